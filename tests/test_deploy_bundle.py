"""Bundle manifest: round trip, schema errors naming the field, sha256 / missing-file
detection, and the ``rapsam-edge export`` command."""

from __future__ import annotations

import argparse
import copy
import json
import shutil
from pathlib import Path

import pytest

from rapsam_edge.bundle import (
    FORMAT_NAME,
    BundleError,
    ChecksumError,
    ManifestError,
    MissingFileError,
    load_bundle,
    parse_manifest,
)


@pytest.fixture(scope="module")
def manifest(xs_bundle) -> dict:
    return json.loads((xs_bundle[0] / "manifest.json").read_text())


@pytest.fixture()
def bundle_copy(xs_bundle, tmp_path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(xs_bundle[0], dst)
    return dst


def test_manifest_round_trip(xs_bundle, manifest):
    root, model = xs_bundle
    b = load_bundle(root)
    assert b.format_version == 1 and manifest["format"] == FORMAT_NAME
    assert b.name == "test-xs" and b.variant == "edge-xs"
    assert b.feat_stride == model.feat_stride == 8
    assert b.num_queries == model.num_queries and b.num_classes == 12
    assert b.input.layout == "NHWC" and b.input.dtype == "uint8"
    assert b.input.color_order == "RGB" and b.input.pad_divisor == 32
    assert b.input.long_side == model.input_size
    assert b.input.mean == pytest.approx((123.675, 116.28, 103.53))
    assert [c.is_thing for c in b.classes] == [True] * 8 + [False] * 4
    assert b.postprocess.score_threshold == 0.8 and b.postprocess.prompt_threshold == 0.0
    assert set(b.graphs) == {"encoder", "panoptic_decoder", "prompt_decoder"}
    enc = b.graphs["encoder"]
    assert enc.input_names == ("image",) and enc.inputs[0].shape == ("B", "H", "W", 3)
    assert enc.outputs[0].shape == ("B", 64, "H/8", "W/8")
    assert b.graphs["prompt_decoder"].inputs[1].shape == ("B", "P", 4)
    assert b.graphs["panoptic_decoder"].outputs[0].shape == ("B", 32, 13)
    for g in b.graphs:
        assert "onnx" in b.formats(g)
        for fmt in b.formats(g):
            assert b.graph_path(g, fmt).is_file()
    # every file but the manifest is checksummed, including the IR .bin files
    on_disk = {p.name for p in root.iterdir() if p.name != "manifest.json"}
    assert set(b.files) == on_disk
    assert b.weights_path() == root / "model.safetensors"
    assert b.provenance["weights"] == "random init, seed 0"
    assert b.export["simplifier"] in {"onnxslim", "onnxsim", "onnxruntime-basic", "none"}
    with pytest.raises(BundleError, match="no 'tensorrt' file"):
        b.graph_path("encoder", "tensorrt")
    # frozen
    with pytest.raises(AttributeError):
        b.name = "x"  # type: ignore[misc]


def test_checksum_mismatch_detected(bundle_copy):
    f = bundle_copy / "prompt_decoder.bin"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match=r"prompt_decoder\.bin"):
        load_bundle(bundle_copy)
    load_bundle(bundle_copy, verify=False)  # opt-out still parses


def test_missing_file_detected(bundle_copy):
    (bundle_copy / "encoder.onnx").unlink()
    with pytest.raises(MissingFileError, match=r"encoder\.onnx"):
        load_bundle(bundle_copy)
    with pytest.raises(MissingFileError, match="does not exist; shipped bundles"):
        load_bundle(bundle_copy / "nope")


def _set(d: dict, path: tuple, value) -> None:
    for k in path[:-1]:
        d = d[k]
    if value is _DELETE:
        del d[path[-1]]
    else:
        d[path[-1]] = value


_DELETE = object()
BAD = [
    (("format_version",), 99, r"manifest\.format_version: 99 is not one of \[1\]"),
    (("format",), "other", r"manifest\.format"),
    (("feat_stride",), "8", r"manifest\.feat_stride: expected int"),
    (("num_queries",), _DELETE, r"manifest\.num_queries: missing"),
    (("input", "layout"), "NCHW", r"manifest\.input\.layout: 'NCHW' is not one of"),
    (("input", "mean"), [1, 2], r"manifest\.input\.mean: expected 3 values"),
    (("input", "long_side"), 100, r"manifest\.input\.long_side: 100 is not a multiple"),
    (("classes", 3, "id"), 7, r"manifest\.classes\[3\]\.id: 7 != its position 3"),
    (("classes", 0, "is_thing"), 1, r"manifest\.classes\[0\]\.is_thing: expected bool"),
    (
        ("graphs", "encoder", "inputs", 0, "shape"),
        ["B", 0, "W", 3],
        r"manifest\.graphs\.encoder\.inputs\[0\]\.shape\[1\]: 0 < 1",
    ),
    (
        ("graphs", "encoder", "inputs", 0, "dtype"),
        "uint9",
        r"manifest\.graphs\.encoder\.inputs\[0\]\.dtype",
    ),
    (("graphs", "encoder", "files", "onnx"), "../x.onnx", r"must be a relative path"),
    (("graphs", "encoder", "files", "tflite"), "x.tflite", r"files\.tflite: unknown key"),
    (("graphs", "bogus"), {}, r"manifest\.graphs\.bogus: unknown key; known \['encoder'"),
    (("files", "encoder.onnx"), "abc", r"not a lowercase sha256"),
    (("files", "encoder.bin"), _DELETE, r"'encoder\.bin' \(graph encoder, openvino\) has no"),
    (("postprocess", "score_threshold"), None, r"postprocess\.score_threshold: expected"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), BAD, ids=[".".join(map(str, b[0])) for b in BAD]
)
def test_bad_manifest_field_is_named(manifest, path, value, message):
    if path[0] == "files" and value is _DELETE and path[1] not in manifest["files"]:
        pytest.skip("bundle has no OpenVINO IR (openvino not installed)")
    bad = copy.deepcopy(manifest)
    _set(bad, path, value)
    with pytest.raises(ManifestError, match=message):
        parse_manifest(bad, "/nowhere")


def test_bad_json_and_unknown_version_on_disk(bundle_copy):
    m = bundle_copy / "manifest.json"
    data = json.loads(m.read_text())
    data["format_version"] = 2
    m.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"format_version: 2 is not one of \[1\]"):
        load_bundle(bundle_copy)
    m.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_bundle(bundle_copy)


def test_export_rejects_wrong_class_count(xs_bundle, tmp_path):
    from rapsam_edge.deploy.bundle_writer import export_bundle

    with pytest.raises(ValueError, match="3 classes given, the model has 12"):
        export_bundle(
            xs_bundle[1],
            tmp_path / "b",
            name="x",
            classes=[{"id": i, "name": str(i), "is_thing": True} for i in range(3)],
        )


def test_export_refuses_foreign_directory(xs_bundle, tmp_path):
    from rapsam_edge.deploy.bundle_writer import export_bundle

    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a bundle"):
        export_bundle(xs_bundle[1], tmp_path, name="x", classes=load_bundle(xs_bundle[0]).classes)
    assert (tmp_path / "notes.txt").exists()


def test_cli_export_from_saved_weights(xs_bundle, tmp_path):
    pytest.importorskip("safetensors")
    from rapsam_edge.commands import export as cli
    from rapsam_edge.errors import ConfigError
    from rapsam_edge.model import save_model

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)

    def export(weights, out, *extra):
        argv = ["--weights", str(weights), "--out", str(out), "--formats", "onnx", *extra]
        return cli.run(parser.parse_args(argv))

    # weights saved without a vocabulary: the exporter refuses to guess one
    save_model(xs_bundle[1], tmp_path / "bare")
    with pytest.raises(ConfigError, match="carry no class vocabulary") as info:
        export(tmp_path / "bare", tmp_path / "nope")
    assert "--classes" in info.value.hint
    assert export(tmp_path / "bare", tmp_path / "out", "--classes", "synthetic") == 0
    b = load_bundle(tmp_path / "out")
    assert b.name == "out" and b.formats("encoder") == ("onnx",)
    assert b.class_names[0] == "circle"  # the synthetic vocabulary, asked for
    assert b.weights is None and not (tmp_path / "out" / "encoder.xml").exists()
    # the same weights give byte-identical ONNX graphs (deterministic export)
    for g in b.graphs:
        assert b.files[f"{g}.onnx"] == load_bundle(xs_bundle[0]).files[f"{g}.onnx"]
    # a vocabulary saved with the weights travels into the bundle with no flag
    vocab = [{"id": i, "name": f"part-{i}", "is_thing": i % 2 == 0} for i in range(12)]
    save_model(xs_bundle[1], tmp_path / "named", classes=vocab)
    assert export(tmp_path / "named", tmp_path / "named-out") == 0
    named = load_bundle(tmp_path / "named-out")
    assert [c.to_dict() for c in named.classes] == vocab


def test_cli_export_uses_the_size_the_run_was_trained_at(monkeypatch, tmp_path):
    """The shipped teacher run's config.json says 640, it was trained at 320: ``export``
    without --input-size exports at 320, with it at the size asked for (the exporter is
    replaced by a recorder: only the size handed to it is under test here)."""
    import rapsam_edge.deploy.bundle_writer as bundle_writer
    import rapsam_edge.model.io as model_io
    from rapsam_edge.commands import export as cli

    run = Path(__file__).resolve().parents[1] / "models" / "edge-s-teacher-train"
    assert json.loads((run / "config.json").read_text())["input_size"] == 640
    seen = []

    def record(model, out, **kwargs):
        seen.append(kwargs["input_size"])
        return out

    monkeypatch.setattr(model_io, "load_model", lambda weights: object())
    monkeypatch.setattr(bundle_writer, "export_bundle", record)
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    base = ["--weights", str(run), "--out", str(tmp_path / "b")]
    assert cli.run(parser.parse_args(base)) == 0
    assert cli.run(parser.parse_args([*base, "--input-size", "480"])) == 0
    assert seen == [320, 480]
