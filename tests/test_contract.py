"""The torch-free contract: one Manifest type written and read, graph I/O by role, and a
runtime that takes tensor names from the manifest."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from rapsam_edge import Segmenter
from rapsam_edge.assets import DEFAULT_BUNDLE
from rapsam_edge.bundle import Bundle, load_bundle, sha256_file
from rapsam_edge.contract import (
    GRAPH_IO,
    GRAPH_NAMES,
    POINT_BOX_HALF,
    SEGMENT_DTYPE,
    Manifest,
    PostprocessDefaults,
    concrete_io,
    id_to_rgb,
    normalize_classes,
    read_classes_file,
    rgb_to_id,
)
from rapsam_edge.errors import InputError, ManifestError


def test_manifest_round_trips_through_its_dict(shipped_bundle):
    b = load_bundle(shipped_bundle)
    m = b.manifest
    assert isinstance(m, Manifest) and not isinstance(m, Bundle)
    d = m.to_dict()
    assert Manifest.from_dict(json.loads(json.dumps(d))) == m
    on_disk = json.loads((shipped_bundle / "manifest.json").read_text())
    assert d == on_disk  # the writer's dict is the file, key for key


def test_shipped_manifest_follows_the_contract(shipped_bundle):
    b = load_bundle(shipped_bundle)
    assert tuple(b.graphs) == GRAPH_NAMES
    for g, info in b.graphs.items():
        assert tuple(t.role for t in info.inputs) == GRAPH_IO[g].input_roles
        assert tuple(t.role for t in info.outputs) == GRAPH_IO[g].output_roles
    assert b.postprocess == PostprocessDefaults()  # the shipped thresholds are the defaults
    io = concrete_io("prompt_decoder", feat_dim=64, num_queries=32, num_classes=12, feat_stride=8)
    assert io["inputs"][1] == {"name": "boxes", "dtype": "float32", "shape": ["B", "P", 4]}


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("graphs", "encoder", "inputs", 0, "dtype"), "float32", r"inputs\[0\]\.dtype"),
        (("graphs", "panoptic_decoder", "outputs"), [], r"panoptic_decoder\.outputs: 0 tensors"),
        (("graphs", "encoder", "outputs", 0, "shape"), ["B", 64], r"outputs\[0\]\.shape: rank 2"),
        (("postprocess", "score_threshold"), float("nan"), r"score_threshold: nan is not finite"),
        (("input", "pad_value"), 300, r"pad_value: 300 > 255"),
        (("graphs", "encoder", "precision"), "int4", r"precision"),
    ],
)
def test_manifest_against_the_contract(shipped_bundle, path, value, field):
    d = json.loads((shipped_bundle / "manifest.json").read_text())
    node = d
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ManifestError, match=field):
        Manifest.from_dict(d)


def test_classes_helpers(tmp_path):
    entries = normalize_classes(
        [{"id": 0, "name": "a", "isthing": 1}, {"id": 1, "name": "b", "is_thing": False}]
    )
    assert [c.is_thing for c in entries] == [True, False]
    with pytest.raises(ManifestError, match="expected 0"):
        normalize_classes([{"id": 1, "name": "a", "is_thing": True}])
    f = tmp_path / "c.json"
    f.write_text(
        json.dumps({"categories": [{"name": "x", "isthing": 1}, {"name": "y", "isthing": 0}]})
    )
    assert [c.name for c in read_classes_file(f)] == ["x", "y"]
    f.write_text("{not json")
    with pytest.raises(ManifestError, match=r"c\.json"):
        read_classes_file(f)


def test_panoptic_ids_and_constants():
    ids = np.array([[0, 1, 256], [65536, 2**24 - 1, 7]])
    np.testing.assert_array_equal(rgb_to_id(id_to_rgb(ids)), ids)
    with pytest.raises(InputError):
        id_to_rgb(np.array([2**24]))
    assert SEGMENT_DTYPE.names == ("id", "class", "query", "score", "area", "is_thing")
    assert POINT_BOX_HALF == 3.0


def test_runtime_reads_tensor_names_from_the_manifest(shipped_bundle, tmp_path):
    """Rename every tensor of the ONNX graphs (and the manifest): the Segmenter gives the
    same results, so it cannot be using literal names."""
    onnx = pytest.importorskip("onnx")
    src = load_bundle(shipped_bundle)
    out = tmp_path / "renamed"
    out.mkdir()
    manifest = json.loads((shipped_bundle / "manifest.json").read_text())
    files = {}
    for g in GRAPH_NAMES:
        model = onnx.load(str(shipped_bundle / f"{g}.onnx"))
        rename = {t.name: f"{g}__{t.name}__x" for t in (*model.graph.input, *model.graph.output)}
        for vi in (*model.graph.input, *model.graph.output):
            vi.name = rename[vi.name]
        for node in model.graph.node:
            node.input[:] = [rename.get(n, n) for n in node.input]
            node.output[:] = [rename.get(n, n) for n in node.output]
        onnx.save(model, str(out / f"{g}.onnx"))
        entry = manifest["graphs"][g]
        entry["files"] = {"onnx": f"{g}.onnx"}
        for t in (*entry["inputs"], *entry["outputs"]):
            t["name"] = rename[t["name"]]
        files[f"{g}.onnx"] = sha256_file(out / f"{g}.onnx")
    manifest["weights"] = None
    manifest["files"] = files
    (out / "manifest.json").write_text(json.dumps(manifest))
    renamed = load_bundle(out)
    assert renamed.graphs["encoder"].name_of("image") == "encoder__image__x"
    frame = np.random.default_rng(0).integers(0, 256, (120, 170, 3), dtype=np.uint8)
    a = Segmenter(src, "ort-cpu", score_threshold=0.3)
    b = Segmenter(renamed, "ort-cpu", score_threshold=0.3)
    np.testing.assert_array_equal(a.panoptic(frame).panoptic_map, b.panoptic(frame).panoptic_map)
    pa = a.prompt(a.set_image(frame), points=[(50, 60)], boxes=[(10, 10, 90, 80)])
    pb = b.prompt(b.set_image(frame), points=[(50, 60)], boxes=[(10, 10, 90, 80)])
    np.testing.assert_array_equal(pa.masks, pb.masks)
    shutil.rmtree(out)


def test_bundle_is_a_manifest_with_a_root(shipped_bundle):
    b = load_bundle(DEFAULT_BUNDLE)  # a shipped bundle by name
    assert b.root == shipped_bundle and dataclasses.is_dataclass(b)
    assert b.num_classes == len(b.classes) == 12
