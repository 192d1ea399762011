"""Runtime backends: registry / auto-pick, feed checks, torch reference, TensorRT profile
logic (pure Python), and the no-torch promise of ``rapsam_edge.runtime`` / ``bundle``."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rapsam_edge.bundle import load_bundle
from rapsam_edge.errors import ConfigError
from rapsam_edge.runtime import (
    BACKENDS,
    Backend,
    BackendUnavailable,
    available_backends,
    create_backend,
    unavailable_reasons,
)
from rapsam_edge.runtime.tensorrt import ShapeProfile, engine_cache_path, profile_shapes

BLOCK_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _Block())
"""


@pytest.fixture(scope="module")
def bundle():
    """The shipped edge-xs bundle (D = 64, 32 queries, 12 classes): the shapes below are its."""
    return load_bundle("edge-xs-synthetic")


def _image(h: int = 128, w: int = 160, batch: int = 1) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (batch, h, w, 3), dtype=np.uint8)


def test_registry_table_is_consistent():
    ranks = [e.rank for e in BACKENDS.values() if e.rank is not None]
    assert len(ranks) == len(set(ranks))
    auto_order = sorted(
        (n for n, e in BACKENDS.items() if e.rank is not None), key=lambda n: BACKENDS[n].rank
    )
    assert auto_order == ["tensorrt", "ort-tensorrt", "ort-cuda", "openvino", "ort-cpu"]
    assert BACKENDS["torch"].rank is None  # reference only, never auto-picked


def test_auto_pick_reports_an_available_backend(bundle, caplog):
    avail = available_backends(bundle, "encoder")
    assert "ort-cpu" in avail
    with caplog.at_level("INFO", logger="rapsam_edge.runtime.selection"):
        be = create_backend(bundle, "encoder")  # name="auto": the selection policy
    assert be.name in avail
    assert be.selection.startswith("auto: ") and f"{be.name} on" in be.selection
    assert be.selection in caplog.text
    if {"openvino", "ort-cpu"} <= set(avail):  # both timed, in pipeline order
        assert "openvino" in be.selection and "ort-cpu" in be.selection
    assert isinstance(be, Backend)
    out = be.run({"image": _image()})
    assert out["feats"].shape == (1, 64, 16, 20)
    reasons = unavailable_reasons(bundle, "encoder")
    for name in BACKENDS:
        assert (reasons[name] is None) == (name in avail)


def test_unknown_backend_lists_known_ones(bundle):
    with pytest.raises(
        ConfigError,
        match=r"unknown backend 'tflite'; known: auto, fastest, tensorrt, .*openvino, ort-cpu",
    ):
        create_backend(bundle, "encoder", "tflite")


def test_unavailable_backend_raises_cleanly(bundle):
    reasons = unavailable_reasons(bundle, "encoder")
    if reasons["tensorrt"] is None:
        pytest.skip("TensorRT is usable here")
    assert isinstance(reasons["tensorrt"], str)
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        create_backend(bundle, "encoder", "tensorrt")


def test_feed_checks_name_the_problem(bundle):
    be = create_backend(bundle, "encoder", "ort-cpu")
    with pytest.raises(ValueError, match="'image' has dtype float32, expected uint8"):
        be.run({"image": _image().astype(np.float32)})
    with pytest.raises(ValueError, match="axis 3 must be 3"):
        be.run({"image": _image()[..., :2].copy()})
    with pytest.raises(ValueError, match="missing \\['image'\\]"):
        be.run({"img": _image()})


@pytest.mark.parametrize("threads", [1, 2])
def test_ort_thread_option_and_batch(bundle, threads):
    be = create_backend(bundle, "panoptic_decoder", "ort-cpu", intra_op_threads=threads)
    feats = np.random.default_rng(1).standard_normal((2, 64, 12, 28)).astype(np.float32)
    out = be.run({"feats": feats})
    assert out["cls_logits"].shape == (2, 32, 13)
    assert out["mask_logits"].shape == (2, 32, 12, 28)
    assert out["query_embed"].shape == (2, 32, 64)


def test_openvino_static_shape_cache(bundle):
    pytest.importorskip("openvino")
    be = create_backend(
        bundle, "prompt_decoder", "openvino", static_shapes=True, max_cached_shapes=2
    )
    ref = create_backend(bundle, "prompt_decoder", "ort-cpu")
    rng = np.random.default_rng(2)
    feats = rng.standard_normal((1, 64, 16, 20)).astype(np.float32)
    for p in (1, 3, 17):
        boxes = np.sort(rng.uniform(0, 128, (1, p, 4)).astype(np.float32), axis=-1)
        got, want = (
            be.run({"feats": feats, "boxes": boxes}),
            ref.run({"feats": feats, "boxes": boxes}),
        )
        assert np.abs(got["mask_logits"] - want["mask_logits"]).max() < 2e-4
    assert len(be._compiled) == 2  # LRU bound


def test_openvino_auto_static_shapes(bundle):
    """CPU default "auto": the dynamic model serves; a shape seen ``static_after`` times gets a
    static copy compiled in the background, which then serves it with the same results."""
    pytest.importorskip("openvino")
    be = create_backend(bundle, "prompt_decoder", "openvino", max_cached_shapes=2)
    assert be.static_shapes == "auto" and be._dynamic is not None
    ref = create_backend(bundle, "prompt_decoder", "ort-cpu")
    rng = np.random.default_rng(3)
    feats = rng.standard_normal((1, 64, 16, 20)).astype(np.float32)
    boxes = np.sort(rng.uniform(0, 128, (1, 2, 4)).astype(np.float32), axis=-1)
    feeds = {"feats": feats, "boxes": boxes}
    want = ref.run(feeds)["mask_logits"]
    first = be.run(feeds)["mask_logits"]  # seen once: dynamic, nothing compiling
    assert not be._pending and not be._compiled
    be.run(feeds)  # seen twice: the static copy compiles in the background
    assert be.settle(timeout=60)
    assert list(be._compiled) == [(("feats", feats.shape), ("boxes", boxes.shape))]
    static = be.run(feeds)["mask_logits"]
    for got in (first, static):
        assert np.abs(got - want).max() < 2e-4
    # Three more shapes, each twice: the LRU keeps the last two; an evicted shape counts anew.
    for p in (3, 5, 7):
        other = {"feats": feats, "boxes": np.repeat(boxes[:, :1], p, axis=1)}
        be.run(other)
        be.run(other)
        assert be.settle(timeout=60)
    assert [k[1][1][1] for k in be._compiled] == [5, 7]
    assert be._seen.get((("feats", feats.shape), ("boxes", boxes.shape))) is None
    be.close()
    assert be.settle(timeout=1)


def test_openvino_exit_during_a_background_compile():
    """A process that exits while a static copy is compiling exits cleanly (a daemon compile
    thread aborted the interpreter's finalisation: "terminate called without an active
    exception", status -6)."""
    pytest.importorskip("openvino")
    code = (
        "import numpy as np\n"
        "from rapsam_edge.bundle import load_bundle\n"
        "from rapsam_edge.runtime import create_backend\n"
        "be = create_backend(load_bundle('edge-xs-synthetic'), 'encoder', 'openvino')\n"
        "img = np.zeros((1, 128, 160, 3), np.uint8)\n"
        "be.run({'image': img}); be.run({'image': img})\n"
        "assert be._pending, 'the second call starts a compile'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "terminate called" not in proc.stderr


def test_openvino_static_shape_options(bundle):
    pytest.importorskip("openvino")
    for bad in ({"static_shapes": "yes"}, {"static_after": 0}, {"max_cached_shapes": True}):
        with pytest.raises(ConfigError):
            create_backend(bundle, "encoder", "openvino", **bad)
    dynamic = create_backend(bundle, "encoder", "openvino", static_shapes=False)
    for _ in range(3):
        dynamic.run({"image": _image()})
    assert dynamic.settle(timeout=0) and not dynamic._compiled


def test_torch_reference_backend_matches_ort():
    pytest.importorskip("torch")
    # the source tree's copy: the installed package's bundles carry no training weights
    bundle = load_bundle(Path(__file__).resolve().parents[1] / "models" / "edge-xs-synthetic")
    tb = create_backend(bundle, "encoder", "torch")
    ob = create_backend(bundle, "encoder", "ort-cpu")
    assert tb.selection.startswith("torch (requested)")
    img = _image(96, 224)
    diff = np.abs(tb.run({"image": img})["feats"] - ob.run({"image": img})["feats"]).max()
    assert diff < 2e-4


def test_tensorrt_profile_covers_manifest_axes(bundle):
    """Pure-Python part of the TensorRT backend: profile ranges from the manifest."""
    axes = ShapeProfile(max_batch=2, max_prompts=32).axis_ranges(bundle)
    assert axes["H"] == (64, 256, 320) and axes["W"] == (64, 320, 320)
    enc = profile_shapes(bundle.graphs["encoder"].inputs, axes, where="t")
    assert enc["image"] == ((1, 64, 64, 3), (1, 256, 320, 3), (2, 320, 320, 3))
    pr = profile_shapes(bundle.graphs["prompt_decoder"].inputs, axes, where="t")
    assert pr["feats"] == ((1, 64, 8, 8), (1, 64, 32, 40), (2, 64, 40, 40))
    assert pr["boxes"] == ((1, 1, 4), (1, 8, 4), (2, 32, 4))
    from pathlib import Path

    kw = {
        "cache_dir": Path("/c"),
        "gpu_key": "Orin-sm87",
        "trt_version": "10.3.0",
        "graph": "encoder",
        "onnx_sha256": "ab" * 32,
        "profile": {"shapes": enc},
    }
    p16, p32 = engine_cache_path(precision="fp16", **kw), engine_cache_path(precision="fp32", **kw)
    assert p16 != p32 and p16.parts[:4] == ("/", "c", "Orin-sm87", "trt-10.3.0")


@pytest.mark.gpu
def test_tensorrt_matches_ort(bundle, tmp_path):
    from rapsam_edge.runtime.tensorrt import TensorRTBackend

    reason = TensorRTBackend.unavailable_reason()
    if reason:
        pytest.skip(f"TensorRT backend unavailable: {reason}")
    ref = create_backend(bundle, "encoder", "ort-cpu")
    trt = create_backend(bundle, "encoder", "tensorrt", precision="fp32", cache_dir=tmp_path)
    img = _image()
    diff = np.abs(trt.run({"image": img})["feats"] - ref.run({"image": img})["feats"]).max()
    assert diff < 1e-2
    again = create_backend(bundle, "encoder", "tensorrt", precision="fp32", cache_dir=tmp_path)
    assert again.engine_path == trt.engine_path and trt.engine_path.is_file()


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


def test_runtime_and_bundle_import_no_torch():
    proc = _run_python(
        "import sys, rapsam_edge.runtime, rapsam_edge.bundle\n"
        "import rapsam_edge.runtime.ort, rapsam_edge.runtime.openvino\n"
        "import rapsam_edge.runtime.tensorrt, rapsam_edge.runtime.selection\n"
        "print('torch' in sys.modules)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_bundle_runs_with_torch_blocked(shipped_bundle):
    code = (
        BLOCK_TORCH
        + f"""
import numpy as np
from rapsam_edge.bundle import load_bundle
from rapsam_edge.runtime import available_backends, create_backend
b = load_bundle({str(shipped_bundle)!r})
assert "torch" not in available_backends(b, "encoder")
for name in [n for n in ("ort-cpu", "openvino") if n in available_backends(b, "encoder")]:
    enc = create_backend(b, "encoder", name)
    dec = create_backend(b, "prompt_decoder", name)
    img = np.zeros((1, 128, 160, 3), np.uint8)
    feats = enc.run({{"image": img}})["feats"]
    out = dec.run({{"feats": feats, "boxes": np.array([[[8, 8, 64, 64]]], np.float32)}})
    print(name, out["mask_logits"].shape)
print(create_backend(b, "encoder").selection)
import sys
print("torch" in sys.modules)
"""
    )
    proc = _run_python(code)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert "ort-cpu (1, 1, 16, 20)" in lines
    assert lines[-2].startswith("auto: ") and lines[-1] == "False"


# -- every fallback is loud (issue 25, deliverable 8) -------------------------------------


def test_auto_drops_an_option_a_candidate_does_not_take_with_a_warning(caplog):
    """Under a policy the caller cannot know which backend it gets: an option of another
    backend is dropped for the candidate, with a WARNING naming the option and the backend."""
    from rapsam_edge.runtime.selection import _options_for

    with caplog.at_level("WARNING", logger="rapsam_edge.runtime.selection"):
        kept = _options_for("openvino", {"intra_op_threads": 2, "num_threads": 1})
    assert kept == {"num_threads": 1}
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "openvino" in record.getMessage() and "intra_op_threads=2" in record.getMessage()
    assert "num_threads" not in record.getMessage().split("(it takes")[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="rapsam_edge.runtime.selection"):
        assert _options_for("ort-cpu", {"intra_op_threads": 2}) == {"intra_op_threads": 2}
    assert not caplog.records  # nothing dropped, nothing said


def test_auto_refuses_an_option_no_backend_takes(bundle):
    with pytest.raises(
        ConfigError, match=r"no backend takes the option\(s\) \['intra_op_thread'\]"
    ) as e:
        create_backend(bundle, "encoder", "auto", intra_op_thread=2)  # a typo
    assert "intra_op_threads" in e.value.hint


def test_a_segmenter_warns_once_per_dropped_option_not_once_per_graph(caplog):
    """``auto`` creates each candidate for three graphs: the drop is said once."""
    from rapsam_edge.runtime.segmenter import Segmenter

    pytest.importorskip("openvino")
    for options in ({"intra_op_threads": 1}, {"config": {}}):
        caplog.clear()
        with caplog.at_level("WARNING", logger="rapsam_edge.runtime.selection"):
            Segmenter("edge-xs-synthetic", backend_options=options).close()
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(warnings) == 1, warnings
        assert next(iter(options)) in warnings[0]


@pytest.mark.parametrize("name", ["openvino", "ort-cpu"])
def test_an_unknown_option_of_a_named_backend_lists_its_options(bundle, name):
    """As ``auto`` does: a ConfigError naming the option, the hint listing the backend's
    options; never Python's TypeError about an internal ``_open()``."""
    from rapsam_edge.runtime.segmenter import Segmenter
    from rapsam_edge.runtime.selection import _open_params

    if name == "openvino":
        pytest.importorskip("openvino")
    with pytest.raises(ConfigError, match=rf"backend {name} does not take .*'bogus_option'") as e:
        create_backend(bundle, "encoder", name, bogus_option=1)
    assert "_open" not in str(e.value)
    assert all(p in e.value.hint for p in _open_params(name))
    with pytest.raises(ConfigError, match="bogus_option") as e:
        Segmenter(bundle, name, backend_options={"bogus_option": 1})
    assert "_open" not in str(e.value) and e.value.hint.startswith(f"{name} options: ")


def test_a_device_a_backend_lacks_names_the_devices_it_has(bundle):
    """Not an install line where the library is installed; under ``auto`` the message names
    the device asked for, not a backend the caller never chose."""
    from rapsam_edge.runtime.ort import OrtBackend
    from rapsam_edge.runtime.segmenter import Segmenter

    pytest.importorskip("openvino")
    import openvino

    have = openvino.Core().available_devices
    for name in ("openvino", "ort-cpu"):
        with pytest.raises(BackendUnavailable) as e:
            create_backend(bundle, "encoder", name, device="NO_SUCH_DEVICE")
        assert "pip install" not in e.value.hint and "device" in e.value.hint
        assert (have[0] if name == "openvino" else "cpu") in e.value.hint
    for device in ("GPU:99", "NO_SUCH_DEVICE"):
        with pytest.raises(BackendUnavailable, match=f"on device '{device}'") as e:
            Segmenter(bundle, device=device)
        assert "ort-cpu: cpu" in str(e.value) and f"openvino: {have[0]}" in str(e.value)
        assert "runs on 'cpu' only" not in str(e.value) and "pip install" not in e.value.hint
    for bad in (5, 1.5, ["CPU"]):
        with pytest.raises(ConfigError, match="device must be a device name"):
            create_backend(bundle, "encoder", "auto", device=bad)
        with pytest.raises(ConfigError, match="device must be a device name"):
            OrtBackend(bundle, "encoder", device=bad)  # the class used directly too


def test_an_ir_only_bundle_without_openvino_says_to_install_openvino(monkeypatch):
    """onnxruntime is installed but cannot read IR: the hint is OpenVINO's one install line
    (``OpenVINOBackend.install_hint``), not onnxruntime's."""
    import rapsam_edge.runtime.openvino as ov_backend
    from rapsam_edge.runtime.segmenter import Segmenter

    def no_openvino():
        raise ImportError("No module named 'openvino'")

    monkeypatch.setattr(ov_backend, "_core", no_openvino)
    ir_only = load_bundle("edge-xs-synthetic-ov-int8")
    assert not any(ir_only.has(g, "onnx") for g in ir_only.graphs)
    with pytest.raises(BackendUnavailable, match="openvino is not installed") as e:
        Segmenter(ir_only)
    assert e.value.hint == ov_backend.OpenVINOBackend.install_hint
    with pytest.raises(BackendUnavailable) as e:  # named: the other backend cannot read it
        create_backend(ir_only, "encoder", "ort-cpu")
    assert "pip install onnxruntime" not in e.value.hint and "reads" in e.value.hint


def test_openvino_reading_onnx_for_a_missing_ir_warns(bundle, caplog):
    pytest.importorskip("openvino")
    import dataclasses

    onnx_only = dataclasses.replace(
        bundle,
        graphs={
            g: dataclasses.replace(info, files={"onnx": info.files["onnx"]})
            for g, info in bundle.graphs.items()
        },
    )
    with caplog.at_level("WARNING", logger="rapsam_edge.runtime.openvino"):
        be = create_backend(onnx_only, "encoder", "openvino")
    assert be.source.name == "encoder.onnx"
    (record,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert "no OpenVINO IR" in record.getMessage() and "encoder.onnx" in record.getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="rapsam_edge.runtime.openvino"):
        assert create_backend(bundle, "encoder", "openvino").source.suffix == ".xml"
    assert not caplog.records  # the IR is read without a word


def test_openvino_unavailable_says_how_to_install(bundle, monkeypatch):
    import rapsam_edge.runtime.openvino as ov_backend

    def no_openvino():
        raise ImportError("No module named 'openvino'")

    monkeypatch.setattr(ov_backend, "_core", no_openvino)
    install = 'pip install "rapsam-edge[openvino]"'
    with pytest.raises(BackendUnavailable, match="openvino is not installed") as e:
        create_backend(bundle, "encoder", "openvino")
    assert install in str(e.value) and install in e.value.hint
    with pytest.raises(BackendUnavailable) as e:  # the class used directly says it too
        ov_backend.OpenVINOBackend(bundle, "encoder")
    assert install in e.value.hint


def test_tensorrt_qdq_probe_needs_onnx_and_does_not_guess(bundle, monkeypatch):
    """Without ``onnx`` the int8 probe raises MissingDependencyError (it used to search the
    file's bytes for the op names); with it, it reads the graph."""
    from rapsam_edge.errors import MissingDependencyError
    from rapsam_edge.runtime.tensorrt import _has_qdq

    path = bundle.graph_path("encoder", "onnx")
    if importlib.util.find_spec("onnx") is not None:
        assert _has_qdq(path) is False  # the FP32 graph has no Q/DQ nodes
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` raises ImportError
    with pytest.raises(MissingDependencyError, match="needs the onnx package") as e:
        _has_qdq(path)
    assert "pip install onnx" in e.value.hint
