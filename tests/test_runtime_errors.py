"""Typed errors: every error the SDK raises on purpose is a ``RapsamEdgeError``; bad
settings fail at the constructor; the CLI prints one line with what to do (``--debug`` for
the traceback)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import rapsam_edge
from rapsam_edge import errors
from rapsam_edge.assets import DEFAULT_BUNDLE
from rapsam_edge.errors import (
    BackendUnavailable,
    ConfigError,
    InputError,
    ManifestError,
    MissingFileError,
    RapsamEdgeError,
    SourceError,
)
from rapsam_edge.runtime.segmenter import Segmenter

BLOCK_TORCH = """
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "safetensors"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Block())
"""


def test_hierarchy():
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    for cls in classes:
        if cls is not errors.CoreFallbackWarning:
            assert issubclass(cls, RapsamEdgeError), cls
    assert issubclass(InputError, ValueError) and issubclass(ConfigError, InputError)
    assert issubclass(ManifestError, ValueError) and issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(errors.CoreFallbackWarning, RuntimeWarning)
    assert rapsam_edge.RapsamEdgeError is RapsamEdgeError
    assert MissingFileError("x").hint  # every bundle / source error says what to do


@pytest.fixture(scope="module")
def seg(shipped_bundle) -> Segmenter:
    return Segmenter(shipped_bundle, "ort-cpu")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"score_threshold": "0.5"}, "score_threshold must be a number"),
        ({"score_threshold": float("nan")}, "score_threshold must be finite"),
        ({"overlap_threshold": 1.5}, r"overlap_threshold must lie in \[0, 1\]"),
        ({"prompt_threshold": True}, "prompt_threshold must be a number"),
        ({"input_size": 333}, "input_size must be a positive multiple of 32"),
        ({"input_size": "320"}, "input_size must be an int"),
        ({"color_order": "rgb"}, "color_order"),
        ({"backend": "tpu"}, "unknown backend 'tpu'"),
        ({"backend": {"encoder": "ort-cpu"}}, "needs exactly the graphs"),
        ({"backend": 3}, "backend must be a name"),
        ({"max_prompts": 0}, "max_prompts"),
        ({"max_prompts": 10**12}, r"max_prompts must be an int in \[1, 256\]"),
        ({"max_prompts": np.int64(257)}, r"max_prompts must be an int in \[1, 256\]"),
        ({"max_prompts": 2.0}, "max_prompts must be an int"),
        ({"device": 5}, "device must be a device name"),
        ({"device": 5, "backend": "openvino"}, "device must be a device name"),
        ({"device": b"CPU"}, "device must be a device name"),
        ({"backend_options": {"no_such_option": 1}, "backend": "ort-cpu"}, "no_such_option"),
    ],
)
def test_bad_settings_fail_at_the_constructor(shipped_bundle, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Segmenter(shipped_bundle, **kwargs)


def test_bundle_arguments():
    assert Segmenter(None, "ort-cpu").bundle.name == DEFAULT_BUNDLE  # the shipped default
    from rapsam_edge.bundle import load_bundle
    from rapsam_edge.runtime import create_backend

    for empty in ("", "  "):  # not the current directory, whichever entry point
        for call in (Segmenter, load_bundle, lambda b: create_backend(b, "encoder", "ort-cpu")):
            with pytest.raises(ConfigError, match="bundle must name a directory") as info:
                call(empty)
            assert "None" in info.value.hint
    with pytest.raises(MissingFileError, match="shipped bundles"):
        Segmenter("no-such-bundle")
    with pytest.raises(ConfigError, match="bundle must be"):
        Segmenter(42)


def test_max_prompts_takes_numpy_ints_like_input_size(shipped_bundle):
    from rapsam_edge.contract.shared import MAX_PROMPTS

    s = Segmenter(shipped_bundle, "ort-cpu", max_prompts=np.int64(5), input_size=np.int32(320))
    assert s.max_prompts == 5 and type(s.max_prompts) is int
    assert Segmenter(shipped_bundle, "ort-cpu", max_prompts=MAX_PROMPTS).max_prompts == 256
    emb = s.set_image(np.zeros((60, 80, 3), np.uint8))
    with pytest.raises(InputError, match="max_prompts=5"):
        s.prompt(emb, points=[(1, 1)] * 6)


def test_bad_inputs(seg):
    frame = np.zeros((60, 80, 3), np.uint8)
    for bad in (None, frame.astype(np.float32), frame[:0]):
        with pytest.raises(InputError):
            seg.panoptic(bad)
    emb = seg.set_image(frame)
    cases = [
        ({"points": [(90, 10)]}, "inside the 60 x 80"),
        # the message names the first offending row, not just the rule
        ({"points": [(5, 5), (5, -1), (100, 5)]}, r"points\[1\] = \[5.0, -1.0\].*2 of 3"),
        ({"points": [(5, 5), (float("nan"), 1)]}, r"finite.*points\[1\].*NaN or inf"),
        ({"boxes": [(0, 0, float("inf"), 9)]}, r"finite.*boxes\[0\].*NaN or inf"),
        ({"boxes": [(100, 100, 120, 130)]}, "overlap the 60 x 80"),
        ({"boxes": [(10, 10, 5, 20)]}, "x1 > x0"),
        ({"points": [(1, 2, 3)]}, "P x 2"),
        ({"points": [("a", 1)]}, "numbers"),
        ({}, "at least one point or box"),
        ({"points": [(1, 1)] * 300}, "max_prompts=256"),
    ]
    for kwargs, match in cases:
        with pytest.raises(InputError, match=match):
            seg.prompt(emb, **kwargs)
    with pytest.raises(InputError, match="ImageEmbedding"):
        seg.prompt([(1, 2)])
    # a box partly outside the frame is clipped to it, not rejected
    assert seg.prompt(emb, boxes=[(-10, -10, 40, 30)]).masks.shape == (1, 60, 80)


def test_an_edited_embedding_is_refused_in_the_sdks_words(seg):
    """An embedding's features must fit its letterboxed image: a cropped, transposed or
    re-shaped ``feats``, or an edited geometry, is an InputError saying so, not the kernel
    guard's text (``valid_hw must be in ...``) or misplaced masks."""
    import dataclasses

    emb = seg.set_image(np.zeros((60, 80, 3), np.uint8))
    feats, prepared = emb.feats, emb.prepared
    edits = [
        {"feats": feats[:, :, :5]},
        {"feats": feats[:, :, :, :5]},
        {"feats": feats[0]},
        {"feats": np.concatenate([feats, feats])},
        {"feats": feats.transpose(0, 1, 3, 2)} if feats.shape[2] != feats.shape[3] else None,
        {"feats": "x"},
        {"prepared": dataclasses.replace(prepared, valid_hw=(10**6, 10))},
        {"prepared": dataclasses.replace(prepared, valid_hw=(0, 10))},
        {"prepared": dataclasses.replace(prepared, image=prepared.image[:, :64])},
        {"prepared": None},
    ]
    for edit in filter(None, edits):
        with pytest.raises(InputError, match="pass what set_image returned, unmodified"):
            seg.prompt(dataclasses.replace(emb, **edit), points=[(10, 10)])
    assert seg.prompt(emb, points=[(10, 10)]).masks.shape == (1, 60, 80)  # untouched: fine


def test_sources(seg, tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        next(seg.stream(tmp_path / "none.mp4"))
    with pytest.raises(SourceError):
        next(seg.stream(object()))
    with pytest.raises(ConfigError, match="max_frames"):
        next(seg.stream(iter([]), max_frames=-1))


@pytest.mark.parametrize("index", [-1, -2, 100, 2**40, np.int64(-1), np.int32(4000)])
def test_a_camera_index_out_of_range_is_refused_before_opencv(seg, monkeypatch, index):
    """A negative index crashes some OpenCV builds (SIGSEGV), one of 100 or more is read as
    camera + CAP_* backend, 2**40 fails OpenCV's overload resolution: all are refused,
    typed, before cv2.VideoCapture is reached."""
    import cv2

    def no_capture(*args):
        raise AssertionError(f"cv2.VideoCapture{args} reached")

    monkeypatch.setattr(cv2, "VideoCapture", no_capture)
    with pytest.raises(SourceError, match=r"camera index must be in \[0, 99\]") as info:
        next(seg.stream(index, max_frames=2))
    assert info.value.hint and "video path" in info.value.hint
    for flag in (True, False, np.bool_(True)):
        with pytest.raises(SourceError, match="camera index, a video path"):
            next(seg.stream(flag))


def test_stream_reads_no_frame_past_max_frames(seg):
    read = []

    def frames():
        for i in range(10):
            read.append(i)
            yield np.zeros((40, 50, 3), np.uint8)

    assert len(list(seg.stream(frames(), task="panoptic", max_frames=5))) == 5
    assert read == [0, 1, 2, 3, 4]


def test_unavailable_backend_is_typed(shipped_bundle):
    from rapsam_edge.runtime import create_backend

    with pytest.raises(BackendUnavailable) as info:
        create_backend(shipped_bundle, "encoder", "tensorrt")
    assert info.value.hint and "tensorrt" in info.value.hint


def test_closed_backend(shipped_bundle):
    s = Segmenter(shipped_bundle, "ort-cpu")
    s.close()
    with pytest.raises(errors.BackendError, match="after close"):
        s.panoptic(np.zeros((40, 50, 3), np.uint8))


def _cli(*args: str, block_torch: bool = False) -> subprocess.CompletedProcess:
    code = (
        BLOCK_TORCH if block_torch else ""
    ) + "import sys\nfrom rapsam_edge.cli import main\nsys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("info", "/no/such/bundle"), "does not exist; shipped bundles"),
        (
            ("run", "edge-xs-synthetic", "--source", "/no/such/video.mp4", "--max-frames", "1"),
            "does not exist",
        ),
        (
            ("run", "edge-xs-synthetic", "--source", "97", "--max-frames", "1"),
            "cannot open video source 97",
        ),
    ],
)
def test_cli_prints_one_line(args, match, tmp_path):
    proc = _cli(*args, "--out", str(tmp_path)) if args[0] == "run" else _cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert match in proc.stderr and "hint:" in proc.stderr


def test_cli_debug_shows_the_traceback():
    proc = _cli("info", "/no/such/bundle", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "MissingFileError" in proc.stderr


@pytest.mark.parametrize(
    "verb", ["demo", "run", "info", "make-data", "train", "eval", "variants", "convert", "export"]
)
def test_every_help_works_without_torch(verb):
    proc = _cli(verb, "--help", block_torch=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage: rapsam-edge" in proc.stdout


def test_a_torch_command_without_torch_says_what_to_install():
    proc = _cli("variants", block_torch=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "rapsam-edge[train]" in proc.stderr


def test_saturated_logits_are_decisions_and_nan_is_an_error(shipped_bundle):
    """+/-inf from a reduced-precision graph is a definite fg/bg pixel; NaN fails the frame."""
    s = Segmenter(shipped_bundle, "ort-cpu")
    frame = np.zeros((64, 80, 3), np.uint8)
    emb = s.set_image(frame)
    dec = s.graphs["prompt_decoder"]
    name = dec.name_of("mask_logits")
    original = dec.run

    def patched(value):
        def run(feeds):
            out = original(feeds)
            m = out[name].copy()
            m[..., :2, :] = value  # the top two feature rows
            return {**out, name: m}

        return run

    dec.run = patched(np.inf)
    fg = s.prompt(emb, points=[(40, 40)]).masks[0]
    dec.run = patched(-np.inf)
    bg = s.prompt(emb, points=[(40, 40)]).masks[0]
    assert fg[:3].all() and not bg[:3].any()  # 2 cells of stride 8 = 16 input px = 4 frame rows
    dec.run = patched(np.nan)
    with pytest.raises(errors.BackendError, match="NaN"):
        s.prompt(emb, points=[(40, 40)])


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_graph_outputs_that_are_not_logits_are_backend_errors(shipped_bundle, value):
    """``iou`` (prompt decoder) and ``query_embed`` (panoptic decoder) carry no fg/bg decision
    in an infinity: NaN or inf there is the graph's fault, a BackendError naming the tensor,
    never passed on (as an ``iou`` value) or blamed on the caller (the tracker's cost)."""
    s = Segmenter(shipped_bundle, "ort-cpu", score_threshold=0.0, overlap_threshold=0.0)
    frame = np.random.default_rng(0).integers(0, 255, (64, 80, 3), dtype=np.uint8)
    assert len(s.panoptic(frame).segments) > 0  # the query_embed of kept queries is read
    for graph, role, call in (
        ("prompt_decoder", "iou", lambda: s.prompt(s.set_image(frame), points=[(40, 40)])),
        ("panoptic_decoder", "query_embed", lambda: s.panoptic(frame)),
        ("panoptic_decoder", "query_embed", lambda: s.track(frame)),
    ):
        backend = s.graphs[graph]
        name, original = backend.name_of(role), backend.run_roles

        def run_roles(feeds, check=True, original=original, role=role):
            out = original(feeds, check=check)
            return {**out, role: np.full_like(out[role], value)}

        backend.run_roles = run_roles
        with pytest.raises(errors.BackendError, match=f"{graph} {role} holds NaN or inf") as info:
            call()
        assert info.value.hint and name
        del backend.run_roles


def test_unwritable_output_paths_are_one_line(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    proc = _cli("demo", "--out", str(afile), "--repeats", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "afile" in proc.stderr
    proc = _cli("profile", "--iters", "1", "--warmup", "0", "--json", str(afile / "o.json"))
    assert (
        proc.returncode == 2
        and "is not a directory" in proc.stderr
        and "Traceback" not in proc.stderr
    )


def test_every_sdk_error_class_has_a_hint():
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    for cls in classes:
        if issubclass(cls, RapsamEdgeError):
            assert cls("x").hint, cls


def test_stream_surfaces_base_exceptions_from_its_source(seg):
    """Whatever the source raises (KeyboardInterrupt included) reaches the caller, and the
    capture thread is gone afterwards."""
    import threading

    class Stop(BaseException):
        pass

    for exc in (Stop, KeyboardInterrupt):

        def gen(exc=exc):
            yield np.zeros((60, 80, 3), np.uint8)
            raise exc("source failed")

        with pytest.raises(exc):
            for _ in seg.stream(gen(), task="panoptic"):
                pass
    assert not any(t.name == "rapsam-capture" and t.is_alive() for t in threading.enumerate())
    n = [0]

    def counting():
        while True:
            n[0] += 1
            yield np.zeros((60, 80, 3), np.uint8)

    assert len(list(seg.stream(counting(), task="panoptic", max_frames=5))) == 5
    assert n[0] == 5  # no sixth frame read


def test_a_bundle_path_that_is_a_file_says_so(tmp_path, shipped_bundle):
    """A file is not 'missing': the error says a bundle is a directory and to pass its
    folder (a manifest.json path still loads its bundle)."""
    from rapsam_edge.bundle import load_bundle

    onnx = shipped_bundle / "encoder.onnx"
    for path in (onnx, str(onnx)):
        with pytest.raises(errors.BundleError, match="is a file; a bundle is a directory") as e:
            load_bundle(path)
        assert not isinstance(e.value, MissingFileError)
        assert str(shipped_bundle) in e.value.hint
    stray = tmp_path / "model.zip"
    stray.write_bytes(b"PK")
    with pytest.raises(errors.BundleError, match=r"model\.zip is a file"):
        Segmenter(stray)
    assert load_bundle(shipped_bundle / "manifest.json").root == shipped_bundle


def test_bf16_probe_maps_only_the_known_cases_to_unsupported(monkeypatch):
    """``bf16_supported()`` is False when OpenVINO is missing or has no CPU device; a CPU
    plugin that fails to answer is a BackendError, not 'no BF16'."""
    from rapsam_edge.deploy.backends.openvino import fp16 as ov_fp16

    class Core:
        available_devices: tuple[str, ...] = ("CPU",)

        def get_property(self, device, name):
            raise RuntimeError("Exception from src/inference/src/cpp/core.cpp: plugin broken")

    class FakeOV:
        pass

    FakeOV.Core = Core
    monkeypatch.setattr(ov_fp16, "_ov", lambda: FakeOV)
    with pytest.raises(errors.BackendError, match="cannot report OPTIMIZATION_CAPABILITIES") as e:
        ov_fp16.bf16_supported()
    assert "openvino" in e.value.hint
    Core.available_devices = ("GPU",)  # no CPU device: nothing to ask, no BF16
    assert ov_fp16.cpu_capabilities() == () and ov_fp16.bf16_supported() is False

    def missing():
        raise errors.MissingDependencyError("no openvino")

    monkeypatch.setattr(ov_fp16, "_ov", missing)
    assert ov_fp16.bf16_supported() is False
