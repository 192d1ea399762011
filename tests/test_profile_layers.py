"""``profile.layers``: per-operator times from the backends' own profilers (ONNX Runtime
session profiling, OpenVINO performance counters) on the shipped bundle, and the layers
table of ``rapsam-edge profile --layers``."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from rapsam_edge.assets import default_bundle
from rapsam_edge.profile.layers import (
    LayerTable,
    graph_feeds,
    profile_graph,
    profile_layers,
    top_layers,
)
from rapsam_edge.runtime.segmenter import Segmenter

GRAPHS = ("encoder", "panoptic_decoder", "prompt_decoder")
TOP = 5
THREADS = {"ort-cpu": {"intra_op_threads": 2}, "openvino": {"num_threads": 2}}


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """The sample clip's first frame at 640 x 480, BGR (what the profiler uses)."""
    cv2 = pytest.importorskip("cv2")
    from rapsam_edge.assets import sample_clip

    cap = cv2.VideoCapture(str(sample_clip()))
    ok, image = cap.read()
    cap.release()
    assert ok, "cannot read the sample clip"
    return cv2.resize(image, (640, 480), interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope="module", params=["ort-cpu", "openvino"])
def profiled(request, frame):
    """(Segmenter, its LayerTable, the feeds it was profiled on) per backend."""
    backend = request.param
    pytest.importorskip("onnxruntime" if backend == "ort-cpu" else "openvino")
    seg = Segmenter(default_bundle(), backend, color_order="BGR", backend_options=THREADS[backend])
    table = top_layers(seg, frame, top=TOP, runs=10, warmup=2)
    yield seg, table, graph_feeds(seg, frame)
    seg.close()


def _graph_op_names(seg: Segmenter, graph: str) -> set[str]:
    """Names a profiled operator may start with: the ONNX graph's node and output names (ORT
    names fused / layout-converted nodes after them), or the operation names of the model the
    OpenVINO backend read (its executable graph keeps them, or extends them: reorders,
    transposes split off a MatMul)."""
    backend = seg.graphs[graph]
    if backend.name == "openvino":
        return {op.get_friendly_name() for op in backend.model.get_ops()}
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(seg.bundle.graph_path(graph, "onnx")), load_external_data=False)
    return {n.name for n in model.graph.node} | {o for n in model.graph.node for o in n.output}


def test_rows_for_every_graph_sorted_with_shares(profiled):
    seg, table, _ = profiled
    assert isinstance(table, LayerTable) and isinstance(table, list)
    assert [r["graph"] for r in table] == sorted(r["graph"] for r in table)
    for graph in GRAPHS:
        rows = [r for r in table if r["graph"] == graph]
        assert 1 <= len(rows) <= TOP, graph
        ms = [r["ms"] for r in rows]
        assert ms == sorted(ms, reverse=True)
        summary = table.graphs[graph]
        assert summary["note"] is None and summary["operators"] >= len(rows)
        assert summary["backend"] == seg.graphs[graph].name
        for r in rows:
            assert set(r) >= {"graph", "backend", "name", "type", "ms", "share", "graph_ms"}
            assert r["backend"] == seg.graphs[graph].name
            assert r["name"] and re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", r["type"]), r
            assert r["ms"] > 0 and 0 < r["share"] <= 1, r
            assert r["graph_ms"] == pytest.approx(summary["total_ms"])
            assert r["share"] == pytest.approx(r["ms"] / r["graph_ms"])
        assert sum(r["share"] for r in rows) <= 1 + 1e-9
    # a convolutional backbone: convolutions are among the encoder's slowest operators (the
    # very slowest may be a layout Reorder on OpenVINO)
    assert any("Conv" in r["type"] for r in table if r["graph"] == "encoder")


def test_names_are_operators_of_the_graph(profiled):
    seg, table, _ = profiled
    for graph in GRAPHS:
        known = [k for k in _graph_op_names(seg, graph) if k]
        for r in (r for r in table if r["graph"] == graph):
            # names a backend makes for nodes it creates: OpenVINO's <OpType>_<n>, ONNX
            # Runtime's fusions named after their type (SkipLayerNormalization_token_11) and
            # its NCHWc layout reorders (ReorderInput / ReorderOutput, no counter)
            generated = re.fullmatch(r"[A-Z][A-Za-z0-9]*_\d+", r["name"]) or (
                r["backend"] == "ort-cpu"
                and (
                    r["name"] in ("ReorderInput", "ReorderOutput")
                    or re.fullmatch(re.escape(r["type"]) + r"(_[a-z]+)?(_\d+)?", r["name"])
                )
            )
            assert generated or any(r["name"].startswith(k) for k in known), r


def test_operators_are_counted_once_per_run(profiled, frame):
    """Per-run normalisation on the real profilers: every operator runs once per inference,
    so its ``calls`` per run is 1 whatever the numbers of runs and warm-ups (warm-up events
    left in, or a total not divided by the runs, would give (warmup + runs) / runs or
    runs). How the operator sum compares with a timed run is a measurement, in
    benchmarks/bench_profile_vs_benchmark_app.py."""
    seg, _, feeds = profiled
    for graph in GRAPHS:
        for runs, warmup in ((3, 2), (5, 0)):
            prof = profile_graph(seg.graphs[graph], feeds[graph], runs=runs, warmup=warmup)
            assert prof["ops"] and prof["runs"] == runs, graph
            calls = {op["calls"] for op in prof["ops"].values()}
            assert calls == {1.0}, (graph, runs, warmup, calls)
            assert prof["total_ms"] == pytest.approx(sum(op["ms"] for op in prof["ops"].values()))


class _FakeOrtSession:
    """An ONNX Runtime session whose profile trace is known: per run a ``model_run`` marker
    and one Conv kernel of 9 ms in warm-up runs, 1.5 ms in timed ones (µs in the trace)."""

    warmup = 0

    def __init__(self, path, sess_options=None, providers=None):
        self.prefix, self.t, self.events = sess_options.profile_file_prefix, 0, []

    def run(self, outputs, feeds):
        dur = 9000 if len(self.events) // 2 < self.warmup else 1500
        self.events += [
            {"cat": "Session", "name": "model_run", "ts": self.t, "dur": dur + 10},
            {
                "cat": "Node",
                "name": "conv_0_kernel_time",
                "ts": self.t + 1,
                "dur": dur,
                "args": {"op_name": "Conv", "provider": "CPUExecutionProvider"},
            },
        ]
        self.t += 100_000

    def end_profiling(self):
        import json

        path = f"{self.prefix}.json"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.events, f)
        return path


@pytest.fixture
def one_backend(frame, request):
    """(a Segmenter on one backend, its feeds per graph)."""
    backend = request.param
    pytest.importorskip("onnxruntime" if backend == "ort-cpu" else "openvino")
    seg = Segmenter(default_bundle(), backend, color_order="BGR", backend_options=THREADS[backend])
    yield seg, graph_feeds(seg, frame)
    seg.close()


@pytest.mark.parametrize("one_backend", ["ort-cpu"], indirect=True)
def test_ort_trace_is_read_in_ms_per_run_without_the_warmups(one_backend, monkeypatch):
    """Units and normalisation of the ONNX Runtime path on a known trace: µs -> ms, warm-up
    runs dropped by their ``model_run`` markers, divided by the timed runs."""
    import onnxruntime as ort

    seg, feeds = one_backend
    monkeypatch.setattr(_FakeOrtSession, "warmup", 2)
    monkeypatch.setattr(ort, "InferenceSession", _FakeOrtSession)
    prof = profile_graph(seg.graphs["prompt_decoder"], feeds["prompt_decoder"], runs=4, warmup=2)
    assert prof["ops"] == {
        "conv_0": {"type": "Conv", "impl": "CPUExecutionProvider", "ms": 1.5, "calls": 1.0}
    }
    assert prof["total_ms"] == 1.5


@pytest.mark.parametrize("one_backend", ["openvino"], indirect=True)
@pytest.mark.parametrize("device", ["CPU", "GPU"])
def test_openvino_counters_are_read_in_ms_per_run(one_backend, monkeypatch, device):
    """Units and normalisation of the OpenVINO path on known counters: 500 µs per run of one
    node gives 0.5 ms per run, both where the counters are a mean since compile (CPU: the
    warm-ups are removed by difference) and where they are per inference (other devices)."""
    import rapsam_edge.profile.layers as layers

    seg, feeds = one_backend
    backend = seg.graphs["encoder"]
    monkeypatch.setattr(layers, "_ov_counters", lambda request: {"conv": ("Conv", "jit", 500.0)})
    monkeypatch.setattr(backend, "device", device)
    if device != "CPU":  # compile for the CPU whatever the name says: only counters differ
        core = backend.core
        real = core.compile_model

        class Core:
            def compile_model(self, model, _device, config):
                return real(model, "CPU", config)

        monkeypatch.setattr(backend, "core", Core())
    prof = profile_graph(backend, feeds["encoder"], runs=4, warmup=3)
    assert prof["ops"] == {"conv": {"type": "Conv", "impl": "jit", "ms": 0.5, "calls": 1.0}}


def test_a_backend_without_profiler_is_skipped_with_a_note(frame):
    pytest.importorskip("onnxruntime")
    seg = Segmenter(default_bundle(), "ort-cpu", color_order="BGR", backend_options={})
    try:
        real = seg.graphs["prompt_decoder"]

        class NoProfiler:  # a backend the layer profiler does not know (TensorRT, torch)
            name = "tensorrt"
            info = real.info

            def name_of(self, role):
                return real.name_of(role)

            def run(self, feeds):
                return real.run(feeds)

        alias = copy.copy(seg)
        alias.graphs = {**seg.graphs, "prompt_decoder": NoProfiler()}
        table = top_layers(alias, frame, top=2, runs=2, warmup=1)
        assert {r["graph"] for r in table} == {"encoder", "panoptic_decoder"}
        note = table.graphs["prompt_decoder"]
        assert note["total_ms"] is None and "tensorrt" in note["note"]
        assert profile_graph(NoProfiler(), {})["ops"] == {}
        with pytest.raises(ValueError):
            top_layers(seg, frame, top=0)
        full = profile_layers(seg, frame, runs=2, warmup=0)
        assert set(full) == set(GRAPHS) and all(p["ops"] for p in full.values())
    finally:
        seg.close()


def test_cli_profile_layers_prints_the_table(capsys):
    pytest.importorskip("onnxruntime")
    from rapsam_edge.cli import main

    assert main(["profile", "--layers", "--iters", "5", "--warmup", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| graph | operator | type | ms per run | share |" in out
    table = out[out.index("| graph | operator |") :]
    for graph in GRAPHS:
        assert f"| {graph} | " in table, graph
