"""Hostile bundles and frames against the C++ runtime (csrc/runtime, through its example
examples/cpp/segment_frames): every case is refused with a one-line error that names the
graph / tensor / field, a nonzero exit within 10 s, and never a signal (ASan / UBSan abort
with a signal too, so the same table run against the sanitizer build proves 0 findings).

Bundles are copies of models/edge-s-synthetic (files hard-linked) whose manifest.json is
rewritten with its `files` sha256 entries recomputed, so that only the graph-signature
comparison (or, for the rewritten graph files, the output checks) can catch them; where the
Python Segmenter applies, it must refuse the same bundle naming the same graph and tensor.
The PPM cases are frames the example reads itself (header checked before allocation, named
pipes refused). CI points RAPSAM_CPP_EXAMPLE at the built example (see .ci/run)."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rapsam_edge import Segmenter
from rapsam_edge.errors import BackendError, BundleError

EXAMPLE = os.environ.get("RAPSAM_CPP_EXAMPLE")
#: the C++ half of each case needs the built example; the Python half runs everywhere
needs_example = pytest.mark.skipif(
    not EXAMPLE, reason="RAPSAM_CPP_EXAMPLE (the built examples/cpp program) is not set"
)

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "models" / "edge-s-synthetic"
# every case ends within 10 s of its cause (issue 26); a sanitizer build runs several times
# slower, so its CI step may raise the bound (a hang never ends, whatever the bound)
TIMEOUT_S = float(os.environ.get("RAPSAM_HOSTILE_TIMEOUT_S", "10"))

Manifest = dict[str, Any]


# ---------------------------------------------------------------- helpers
def _hostile_bundle(tmp: Path, edit: Callable[[Manifest, Path], None]) -> Path:
    """A copy of BASE (files hard-linked) with manifest.json edited by ``edit(manifest,
    bundle_dir)`` (which may add files) and every listed file's sha256 recomputed."""
    out = tmp / "bundle"
    out.mkdir()
    for f in BASE.iterdir():
        if f.name != "manifest.json":
            os.link(f, out / f.name)
    m = json.loads((BASE / "manifest.json").read_text())
    edit(m, out)
    m["files"] = {
        f.name: hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(out.iterdir())
        if f.name != "manifest.json"
    }
    (out / "manifest.json").write_text(json.dumps(m, indent=1))
    return out


def _ppm(w: int, h: int, rgb: np.ndarray | None = None) -> bytes:
    if rgb is None:
        rgb = np.full((h, w, 3), 127, np.uint8)
    return f"P6\n{w} {h}\n255\n".encode() + rgb.tobytes()


def _frames(tmp: Path) -> Path:
    """A folder with one small binary PPM frame (a gradient: masks of several segments)."""
    src = tmp / "frames"
    src.mkdir(exist_ok=True)
    y, x = np.mgrid[0:96, 0:128]
    rgb = np.stack([x * 2, y * 2, (x + y)], axis=-1).astype(np.uint8)
    (src / "000.ppm").write_bytes(_ppm(128, 96, rgb))
    return src


def _read_frame(path: Path) -> np.ndarray:
    magic, w, h, maxval, pixels = path.read_bytes().split(maxsplit=4)
    assert magic == b"P6" and maxval == b"255"
    return np.frombuffer(pixels, np.uint8).reshape(int(h), int(w), 3)


def _run_example(bundle: Path, source: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [str(EXAMPLE), str(bundle), str(source), "--static-shapes", "off"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env={**os.environ, "PYTHONPATH": ""},
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the example did not end within {TIMEOUT_S} s (a hang)")


def _assert_refused(res: subprocess.CompletedProcess, words: tuple[str, ...]) -> str:
    """Nonzero exit, no signal (a crash, or an ASan / UBSan finding), one error line on stderr
    naming every one of ``words``."""
    assert res.returncode >= 0, f"killed by signal {-res.returncode}: {res.stderr[-3000:]}"
    assert res.returncode != 0, f"accepted: {res.stdout[-2000:]}"
    assert "AddressSanitizer" not in res.stderr and "runtime error:" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for w in words:
        assert w in line, (w, line)
    return line


def _outputs(m: Manifest, graph: str) -> list[dict]:
    return m["graphs"][graph]["outputs"]


def _inputs(m: Manifest, graph: str) -> list[dict]:
    return m["graphs"][graph]["inputs"]


def _tensor(m: Manifest, graph: str, name: str) -> dict:
    return next(t for t in _inputs(m, graph) + _outputs(m, graph) if t["name"] == name)


def _swap_entries(graph: str, i: int, j: int) -> Callable[[Manifest, Path], None]:
    def edit(m: Manifest, _: Path) -> None:
        outs = _outputs(m, graph)
        outs[i], outs[j] = outs[j], outs[i]

    return edit


def _swap_names(graph: str, a: str, b: str) -> Callable[[Manifest, Path], None]:
    """The two tensors' names exchanged, each entry keeping its place, dtype and shape."""

    def edit(m: Manifest, _: Path) -> None:
        ta, tb = _tensor(m, graph, a), _tensor(m, graph, b)
        ta["name"], tb["name"] = b, a

    return edit


def _set(graph: str, name: str, key: str, value: Any) -> Callable[[Manifest, Path], None]:
    def edit(m: Manifest, _: Path) -> None:
        _tensor(m, graph, name)[key] = copy.deepcopy(value)

    return edit


def _set_top(key: str, value: Any) -> Callable[[Manifest, Path], None]:
    def edit(m: Manifest, _: Path) -> None:
        m[key] = value

    return edit


# ------------------------------------------------- graphs whose outputs lie (OpenVINO IR)
def _ov_graph(bundle: Path, m: Manifest, graph: str, model: Any) -> None:
    """``model`` saved as bundle/fake_<graph>.xml and made ``graph``'s only file."""
    import openvino as ov

    ov.save_model(model, str(bundle / f"fake_{graph}.xml"), compress_to_fp16=False)
    m["graphs"][graph]["files"] = {"openvino": f"fake_{graph}.xml"}


def _feats_param(ops: Any) -> Any:
    import openvino as ov

    p = ops.parameter(ov.PartialShape([-1, 128, -1, -1]), ov.Type.f32, name="feats")
    p.output(0).get_tensor().set_names({"feats"})
    return p


def _result(ops: Any, node: Any, name: str) -> Any:
    node.output(0).get_tensor().set_names({name})
    return ops.result(node)


def _fake_panoptic(rows: int, width: int, value: float = 1.0) -> Callable[[Manifest, Path], None]:
    """A panoptic decoder whose query_embed is rows x width for its 50 queries of 128-wide
    features (the manifest says ["B", "N", "D"]): query 10 wins every pixel, so its embedding
    (row 10) is read. With 5 rows, before the output checks: a heap-buffer-overflow read in
    Segmenter::panoptic. Every embedding value is ``value``."""

    def edit(m: Manifest, bundle: Path) -> None:
        import openvino as ov
        import openvino.opset13 as ops

        feats = _feats_param(ops)
        cls = np.full((1, 50, 13), -20.0, np.float32)
        cls[0, :, 12] = 20.0  # no object ...
        cls[0, 10, 0], cls[0, 10, 12] = 20.0, -20.0  # ... but query 10, class 0
        level = np.full((1, 50, 1, 1), -20.0, np.float32)
        level[0, 10] = 20.0
        sliced = ops.slice(feats, [0, 0, 0, 0], [1, 50, 2**31 - 1, 2**31 - 1], [1, 1, 1, 1])
        masks = ops.add(ops.multiply(sliced, np.float32(0.0)), level)
        embed = ops.constant(np.full((1, rows, width), value, np.float32))
        model = ov.Model(
            [
                _result(ops, ops.constant(cls), "cls_logits"),
                _result(ops, masks, "mask_logits"),
                _result(ops, embed, "query_embed"),
            ],
            [feats],
            "panoptic_decoder",
        )
        _ov_graph(bundle, m, "panoptic_decoder", model)
        _tensor(m, "panoptic_decoder", "query_embed")["shape"] = ["B", "N", "D"]

    return edit


def _fake_prompt(grid: bool, iou: float) -> Callable[[Manifest, Path], None]:
    """A prompt decoder: per prompt, mask logits on the feature grid (channel 0 of the
    features; ``grid`` False: 4 x 4 whatever the grid, where the manifest says "H/8", "W/8")
    and an iou of ``iou`` (as many rows as the boxes fed: the runtimes pad the prompt count
    to a multiple of contract prompts.count_bucket)."""

    def edit(m: Manifest, bundle: Path) -> None:
        import openvino as ov
        import openvino.opset13 as ops

        feats = _feats_param(ops)
        boxes = ops.parameter(ov.PartialShape([-1, -1, 4]), ov.Type.f32, name="boxes")
        boxes.output(0).get_tensor().set_names({"boxes"})
        if grid:
            masks = ops.slice(feats, [0, 0, 0, 0], [1, 1, 2**31 - 1, 2**31 - 1], [1, 1, 1, 1])
        else:
            masks = ops.constant(np.ones((1, 1, 4, 4), np.float32))
        # 1 x P x 1 zeros from the boxes: one row per prompt
        zeros = ops.multiply(
            ops.slice(boxes, [0, 0, 0], [1, 2**31 - 1, 1], [1, 1, 1]), np.float32(0)
        )
        masks = ops.add(masks, ops.unsqueeze(zeros, [3]))
        model = ov.Model(
            [
                _result(ops, masks, "mask_logits"),
                _result(ops, ops.add(ops.squeeze(zeros, [2]), np.float32(iou)), "iou"),
            ],
            [feats, boxes],
            "prompt_decoder",
        )
        _ov_graph(bundle, m, "prompt_decoder", model)

    return edit


# ------------------------------------------------------------------- the bundle table
# id -> (manifest edit, words the C++ error line names, words the Python error names; None:
# the Python runtime is not asked, see the case). Python raises BundleError (ManifestError) at
# load for every case it is asked, but the NaN cases: BackendError on the first frame.
BUNDLE_CASES: dict[str, tuple[Callable[[Manifest, Path], None], tuple[str, ...], Any]] = {
    # whole entries moved: the role at each place gets another tensor
    "panoptic outputs swapped": (
        _swap_entries("panoptic_decoder", 0, 1),
        ("panoptic_decoder", "outputs[0]", "cls_logits"),
        ("panoptic_decoder", "outputs[0]", "cls_logits"),
    ),
    "prompt outputs swapped": (
        _swap_entries("prompt_decoder", 0, 1),
        ("prompt_decoder", "outputs[0]", "mask_logits"),
        ("prompt_decoder", "outputs[0]", "mask_logits"),
    ),
    # names exchanged, each entry keeping its place and shape
    "panoptic names swapped": (
        _swap_names("panoptic_decoder", "cls_logits", "query_embed"),
        ("panoptic_decoder", "query_embed", "axis 2"),
        ("panoptic_decoder", "query_embed", "axis 2"),
    ),
    "prompt names swapped": (
        _swap_names("prompt_decoder", "mask_logits", "iou"),
        ("prompt_decoder", "iou", "rank"),
        ("prompt_decoder", "iou", "rank"),
    ),
    "output renamed": (
        _set("panoptic_decoder", "query_embed", "name", "embedding"),
        ("panoptic_decoder", "embedding", "query_embed"),
        ("panoptic_decoder", "embedding", "query_embed"),
    ),
    "input renamed (graph input not fed)": (
        _set("prompt_decoder", "boxes", "name", "prompts"),
        ("prompt_decoder", "prompts", "boxes"),
        ("prompt_decoder", "prompts", "boxes"),
    ),
    "output named as an input": (
        _set("prompt_decoder", "iou", "name", "boxes"),
        ("prompt_decoder", "iou"),
        ("prompt_decoder", "iou"),
    ),
    "duplicate output name": (
        _set("panoptic_decoder", "mask_logits", "name", "cls_logits"),
        ("panoptic_decoder", "cls_logits"),
        ("panoptic_decoder", "cls_logits"),
    ),
    "wrong rank": (
        _set("prompt_decoder", "iou", "shape", ["B", "P", 1]),
        ("prompt_decoder", "outputs[1]", "rank"),
        ("prompt_decoder", "outputs[1]", "rank"),
    ),
    "wrong output dtype": (
        _set("panoptic_decoder", "cls_logits", "dtype", "float16"),
        ("panoptic_decoder", "outputs[0].dtype", "float16"),
        ("panoptic_decoder", "outputs[0].dtype", "float16"),
    ),
    "wrong input dtype": (
        _set("encoder", "image", "dtype", "float32"),
        ("encoder", "inputs[0].dtype", "float32"),
        ("encoder", "inputs[0].dtype", "float32"),
    ),
    "fixed dim disagrees (query_embed width)": (
        _set("panoptic_decoder", "query_embed", "shape", ["B", 50, 64]),
        ("panoptic_decoder", "query_embed", "axis 2 is 128 in the graph, 64 in the manifest"),
        ("panoptic_decoder", "query_embed", "axis 2 is 128 in the graph, 64 in the manifest"),
    ),
    "fixed dim disagrees (feats width)": (
        _set("encoder", "feats", "shape", ["B", 96, "H/8", "W/8"]),
        ("encoder", "feats", "axis 1 is 128 in the graph, 96 in the manifest"),
        ("encoder", "feats", "axis 1 is 128 in the graph, 96 in the manifest"),
    ),
    "fixed dim disagrees (image channels)": (
        _set("encoder", "image", "shape", ["B", "H", "W", 4]),
        ("encoder", "image", "axis 3"),
        ("encoder", "image", "axis 3"),
    ),
    "fixed dim disagrees (class columns)": (
        _set("panoptic_decoder", "cls_logits", "shape", ["B", 50, 14]),
        ("manifest.classes", "cls_logits", "14"),  # both loaders' cross-field rule
        ("manifest.classes", "cls_logits", "14"),
    ),
    "feat_stride disagrees with the encoder": (
        _set_top("feat_stride", 16),
        ("encoder", "feat_stride 16"),
        ("encoder", "feat_stride 16"),
    ),
    # graph files whose outputs disagree with each other at run time (manifest axes named)
    "query_embed shorter than the queries": (
        _fake_panoptic(5, 128),
        ("panoptic_decoder", "query_embed", "N=50", "D=128"),
        ("panoptic_decoder output query_embed", "N=50"),
    ),
    "query_embed narrower than the features": (
        _fake_panoptic(50, 64),
        ("panoptic_decoder", "query_embed", "[1, 50, 64]", "D=128"),
        ("panoptic_decoder output query_embed", "D=128"),
    ),
    "prompt masks off the feature grid": (
        _fake_prompt(grid=False, iou=0.5),
        ("prompt_decoder", "mask_logits", "h=32", "w=40"),
        ("prompt_decoder output mask_logits", "h=32", "w=40"),
    ),
    # graph outputs that are not finite where a value must be (BackendError in both)
    "NaN in query_embed": (
        _fake_panoptic(50, 128, float("nan")),
        ("panoptic_decoder query_embed holds NaN or infinity",),
        ("panoptic_decoder query_embed holds NaN or infinity",),
    ),
    "infinity in prompt iou": (
        _fake_prompt(grid=True, iou=float("inf")),
        ("prompt_decoder iou holds NaN or infinity",),
        ("prompt_decoder iou holds NaN or infinity",),
    ),
}


#: cases whose graph files give outputs of the wrong shape or value: refused on the first
#: frame (BackendError); every other case is refused at load (BundleError)
RUN_TIME_CASES = {
    "query_embed shorter than the queries",
    "query_embed narrower than the features",
    "prompt masks off the feature grid",
    "NaN in query_embed",
    "infinity in prompt iou",
}


@needs_example
@pytest.mark.parametrize("case", list(BUNDLE_CASES))
def test_hostile_bundle_refused_by_cpp_runtime(case: str, tmp_path: Path):
    edit, cpp_words, _ = BUNDLE_CASES[case]
    bundle = _hostile_bundle(tmp_path, edit)
    res = _run_example(bundle, _frames(tmp_path))
    _assert_refused(res, cpp_words)


@pytest.mark.parametrize("case", list(BUNDLE_CASES))
def test_hostile_bundle_refused_by_python_runtime(case: str, tmp_path: Path):
    """The same table through the Python Segmenter (OpenVINO, as the example): the same
    graph and tensor named."""
    edit, _, py_words = BUNDLE_CASES[case]
    bundle = _hostile_bundle(tmp_path, edit)
    frame = _read_frame(_frames(tmp_path) / "000.ppm")
    with pytest.raises((BundleError, BackendError)) as err:
        with Segmenter(bundle, "openvino") as seg:  # as the example: track, then one click
            seg.track(frame)
            seg.prompt(seg.set_image(frame), points=[(64.0, 48.0)])
    want = BackendError if case in RUN_TIME_CASES else BundleError
    assert isinstance(err.value, want), err.value
    for w in py_words:
        assert w in str(err.value), (w, str(err.value))


@needs_example
def test_untouched_copy_runs(tmp_path: Path):
    """The copy the table starts from is accepted: each case fails for its own edit."""
    bundle = _hostile_bundle(tmp_path, lambda m, b: None)
    res = _run_example(bundle, _frames(tmp_path))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("frame 0: "), res.stdout


# ---------------------------------------------------------------------- the PPM table
PPM_CASES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "header 20000 x 20000 (1.2 GB)": (b"P6\n20000 20000\n255\n" + b"\0" * 64, ("size",)),
    "header 2e9 x 2e9": (b"P6\n2000000000 2000000000\n255\n" + b"\0" * 64, ("size",)),
    "header 10^15 wide": (b"P6\n1000000000000000 1\n255\n\0\0\0", ("width",)),
    "header larger than the file": (_ppm(64, 48)[:-100], ("the file holds",)),
    "negative width": (b"P6\n-64 48\n255\n" + b"\0" * (64 * 48 * 3), ("width",)),
    "non-numeric height": (b"P6\n64 x48\n255\n" + b"\0" * (64 * 48 * 3), ("height",)),
    "zero height": (b"P6\n64 0\n255\n", ("width and height",)),
    "maxval 65535": (b"P6\n64 48\n65535\n" + b"\0" * (64 * 48 * 6), ("maxval 65535",)),
    "maxval 254": (b"P6\n64 48\n254\n" + b"\0" * (64 * 48 * 3), ("maxval 254",)),
    "ASCII PPM (P3)": (b"P3\n2 2\n255\n" + b"0 " * 12, ("magic",)),
    "empty file": (b"", ("magic",)),
    "header only": (b"P6\n64 48\n255", ("pixel data",)),
}


@needs_example
@pytest.mark.parametrize("case", list(PPM_CASES))
def test_hostile_ppm_refused_before_allocation(case: str, tmp_path: Path):
    data, words = PPM_CASES[case]
    src = tmp_path / "frames"
    src.mkdir()
    (src / "000.ppm").write_bytes(data)
    res = _run_example(BASE, src)
    line = _assert_refused(res, (str(src / "000.ppm"), *words))
    assert res.returncode == 2, line  # an unreadable SOURCE


@needs_example
def test_fifo_frame_refused_without_waiting(tmp_path: Path):
    """A named pipe called *.ppm (nothing ever writes to it): refused, never opened for a
    blocking read."""
    src = tmp_path / "frames"
    src.mkdir()
    (src / "000.ppm").write_bytes(_ppm(64, 48))
    os.mkfifo(src / "001.ppm")
    res = _run_example(BASE, src)
    _assert_refused(res, (str(src / "001.ppm"), "not a regular file"))


@needs_example
def test_folder_named_like_a_frame_refused(tmp_path: Path):
    src = tmp_path / "frames"
    (src / "000.ppm").mkdir(parents=True)
    res = _run_example(BASE, src)
    _assert_refused(res, (str(src / "000.ppm"), "not a regular file"))


@needs_example
@pytest.mark.skipif(
    not os.environ.get("RAPSAM_CPP_EXAMPLE_VIDEO"),
    reason="RAPSAM_CPP_EXAMPLE_VIDEO unset (the example was built without OpenCV)",
)
def test_png_bomb_refused_before_decoding(tmp_path: Path):
    """A small PNG declaring 20000 x 20000 pixels (OpenCV path): refused by the pixel limit
    before OpenCV allocates the image."""
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")

    w = h = 20000
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    row = b"\0" * (1 + 3 * w)
    idat = zlib.compress(row * 64)  # a few rows are enough for the header to be read
    src = tmp_path / "frames"
    src.mkdir()
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    (src / "000.png").write_bytes(png)
    res = _run_example(BASE, src)
    _assert_refused(res, (str(src / "000.png"),))


def test_frame_limit_has_one_home():
    """The C++ frame limit (rapsam::kMaxFramePixels) is generated from contract.json, as
    Python's MAX_FRAME_PIXELS is read from it: neither is written anywhere else."""
    from rapsam_edge.contract.shared import MAX_FRAME_PIXELS as SHARED
    from rapsam_edge.runtime.inputs import MAX_FRAME_PIXELS

    assert MAX_FRAME_PIXELS is SHARED or MAX_FRAME_PIXELS == SHARED
    header = (REPO / "csrc" / "runtime" / "segmenter.hpp").read_text()
    assert "kMaxFramePixels = contract::kMaxFramePixels;" in header
    assert "8192" not in header


@needs_example
def test_bad_option_is_usage_not_a_crash(tmp_path: Path):
    for args in (["--threads", "x"], ["--input-size", "99999999999"], ["--loops", "0"]):
        res = subprocess.run(
            [str(EXAMPLE), str(BASE), str(_frames(tmp_path)), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert res.returncode == 2, (args, res.stderr)
        assert res.stderr.startswith("usage:"), res.stderr
