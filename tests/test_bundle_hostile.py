"""Hostile and inconsistent bundles (issue 15): files that leave the bundle, unlisted files a
graph could load, manifests that disagree with their graphs, malformed values. Every case is
refused at load with a bundle error (never a crash, a bare Python error or silent garbage)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rapsam_edge import Segmenter
from rapsam_edge.bundle import load_bundle
from rapsam_edge.errors import BundleError, ManifestError

BACKENDS = ["ort-cpu"]
try:
    import openvino  # noqa: F401

    BACKENDS.append("openvino")
except ImportError:
    pass


@pytest.fixture
def bundle_copy(shipped_bundle: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(shipped_bundle, out)
    return out


def _edit(root: Path, change: Callable[[dict], None]) -> None:
    path = root / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _open(root: Path, backend: str) -> None:
    seg = Segmenter(load_bundle(root), backend=backend)
    seg.panoptic(np.zeros((60, 80, 3), np.uint8))


def test_graph_symlinked_outside_is_refused(bundle_copy, tmp_path):
    outside = tmp_path / "outside.onnx"
    shutil.copy(bundle_copy / "encoder.onnx", outside)  # same bytes: the checksum would pass
    (bundle_copy / "encoder.onnx").unlink()
    os.symlink(outside, bundle_copy / "encoder.onnx")
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(bundle_copy)


def test_directory_symlink_inside_is_refused(bundle_copy, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", bundle_copy / "sub")
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(bundle_copy)


def test_manifest_symlink_is_refused(bundle_copy, tmp_path):
    real = tmp_path / "manifest.json"
    shutil.move(bundle_copy / "manifest.json", real)
    os.symlink(real, bundle_copy / "manifest.json")
    with pytest.raises(BundleError, match="symbolic link"):
        load_bundle(bundle_copy)


@pytest.mark.parametrize("name", ["encoder.onnx.data", "weights.bin", "sub/x.onnx_data"])
def test_unlisted_file_a_graph_could_load_is_refused(bundle_copy, name):
    path = bundle_copy / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"\0" * 64)
    with pytest.raises(BundleError, match="not listed in the manifest"):
        load_bundle(bundle_copy)


def test_listed_path_leaving_the_bundle_is_refused(bundle_copy):
    _edit(bundle_copy, lambda m: m["files"].__setitem__("../escape.onnx", "0" * 64))
    with pytest.raises(ManifestError):
        load_bundle(bundle_copy)


def _set(path: list, value):
    def change(m):
        d = m
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return change


MANIFEST_CASES = {
    "feat_stride_16": (_set(["feat_stride"], 16), "feat_stride"),
    "num_queries_7": (_set(["num_queries"], 7), "num_queries"),
    "feats_width_99": (
        _set(["graphs", "encoder", "outputs", 0, "shape"], ["B", 99, "h", "w"]),
        "axis 1",
    ),
    "output_renamed": (
        _set(["graphs", "panoptic_decoder", "outputs", 0, "name"], "bogus"),
        "names",
    ),
    "input_renamed": (_set(["graphs", "encoder", "inputs", 0, "name"], "img"), "names"),
    "rank_changed": (
        _set(["graphs", "prompt_decoder", "outputs", 1, "shape"], ["B", "P", 1]),
        "rank",
    ),
    "one_class_dropped": (lambda m: m["classes"].pop(), "classes"),
    "version_list": (_set(["format_version"], [1]), "format_version"),
    "version_bool": (_set(["format_version"], True), "format_version"),
    # beyond a double's range: not valid JSON in either runtime (nlohmann::json refuses it
    # while parsing, so the Python loader does too: tests/test_manifest_parity.py)
    "threshold_huge_int": (_set(["postprocess", "score_threshold"], 10**400), "number overflow"),
    "threshold_2": (_set(["postprocess", "overlap_threshold"], 2.0), "overlap_threshold"),
    "mean_huge_int": (_set(["input", "mean"], [10**400, 0, 0]), "number overflow"),
    "mean_string": (_set(["input", "mean"], ["a", 0, 0]), "mean"),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", MANIFEST_CASES)
def test_manifest_disagreeing_with_graphs_or_malformed_is_refused(bundle_copy, case, backend):
    change, word = MANIFEST_CASES[case]
    _edit(bundle_copy, change)
    with pytest.raises(ManifestError, match=word):
        _open(bundle_copy, backend)


def test_json_number_too_long_is_a_manifest_error(bundle_copy):
    text = (bundle_copy / "manifest.json").read_text()
    # any JSON layout (the wheel's copy is rewritten by CMake: `"feat_stride" : 8`)
    long, n = re.subn(r'("feat_stride"\s*:\s*)8\b', lambda m: m.group(1) + "9" * 5000, text)
    assert n == 1, "the manifest has no feat_stride 8 to lengthen"
    (bundle_copy / "manifest.json").write_text(long)
    with pytest.raises(ManifestError):
        load_bundle(bundle_copy)


def test_untouched_copy_still_loads_and_runs(bundle_copy):
    for backend in BACKENDS:
        _open(bundle_copy, backend)


@pytest.mark.parametrize("kind", ["a directory", "a broken link", "not a regular file"])
def test_a_manifest_that_is_not_a_file_is_named_as_such(tmp_path, kind):
    """manifest.json is there but cannot be read as a file: said so, not "has no
    manifest.json (not a rapsam-edge bundle?)" (nor a hang on a FIFO)."""
    root = tmp_path / "b"
    root.mkdir()
    manifest = root / "manifest.json"
    if kind == "a directory":
        manifest.mkdir()
    elif kind == "a broken link":
        manifest.symlink_to(tmp_path / "gone.json")
    else:
        os.mkfifo(manifest)
    for spec in (root, manifest, str(root)):
        with pytest.raises(BundleError, match=f"manifest.json .* is {kind}, not a JSON file") as e:
            load_bundle(spec)
        assert "not a rapsam-edge bundle" not in str(e.value) and "re-export" in e.value.hint
