"""Hardware telemetry of the profiler: the tegrastats parser against real lines recorded on
Jetson boards (tests/data/tegrastats/, each file naming its source), the tegrastats sampler
against a fake ``tegrastats`` on PATH, and the memory helpers (NVML through a fake
``pynvml``, and for real where it is absent). No hardware needed."""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path

import pytest

from rapsam_edge.errors import ConfigError, InputError, RapsamEdgeError
from rapsam_edge.profile import memory as mem
from rapsam_edge.profile.memory import (
    GpuMemorySampler,
    MemoryTracker,
    current_rss_mib,
    gpu_memory,
    peak_rss_mib,
)
from rapsam_edge.profile.tegrastats import (
    TegraSample,
    TegraStatsSampler,
    parse_line,
    summarize,
)

DATA = Path(__file__).resolve().parent / "data" / "tegrastats"
FILES = sorted(DATA.glob("*.txt"))


def _lines(path: Path) -> list[str]:
    return [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
        if not line.startswith("#")
    ]


# ------------------------------------------------------------------ recorded lines
def test_recorded_lines_cover_the_generations():
    names = {p.name for p in FILES}
    assert len(FILES) >= 4
    # Nano JetPack 4, TX2 / Xavier JetPack 4, AGX Orin JetPack 5, Orin Nano / NX JetPack 6
    assert {"jetson-nano-jp4.txt", "tx2-jp4.txt", "agx-xavier-jp4.txt"} <= names
    assert {"agx-orin-jp5.txt", "orin-nano-jp6.txt", "orin-nx-8gb-jp6.txt"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_recorded_line_parses(path: Path):
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# source: ") and len(first) > 20, "first line must name the source"
    lines = _lines(path)
    assert lines
    for line in lines:
        s = parse_line(line)
        assert isinstance(s, TegraSample)
        assert 0 < s.ram_used_mb <= s.ram_total_mb
        assert s.cpus, "every recorded line lists CPUs"
        for c in s.cpus:
            assert c.online == (c.load_pct is not None)
            if c.online:
                assert 0 <= c.load_pct <= 100
        assert all(t > -100 for t in s.temperatures.values())
        for current, average in s.rails.values():
            assert current >= 0 and average >= 0
        json.dumps(s.as_dict())  # JSON-ready


# file -> (line index, RAM used/total MB, (sensor, °C), (rail, (current mW, average mW)),
#          input power mW or None)
EXPECTED = {
    "jetson-nano-jp4.txt": (0, 1923, 3964, ("CPU", 40.0), ("POM_5V_IN", (1750, 1628)), 1750),
    "tx2-jp4.txt": (1, 2020, 7852, ("thermal", 41.9), ("VDD_4V0_WIFI", (633, 527)), 3140),
    "agx-xavier-jp4.txt": (0, 14700, 15692, ("Tdiode", 32.0), ("SOC", (2936, 2936)), None),
    "xavier-nx-jp4.txt": (0, 5246, 7771, ("thermal", 31.35), ("VDD_IN", (6140, 5510)), 6140),
    "xavier-nx-jp5.1.2.txt": (0, 3168, 6851, ("GPU", 45.5), ("VDD_SOC", (650, 711)), 2763),
    "agx-orin-jp5.txt": (0, 1282, 62795, ("tj", 42.593), ("VDD_GPU_SOC", (2399, 2399)), 4032),
    "orin-nx-jp5.txt": (0, 6334, 15388, ("CV1", 46.406), ("VDD_CPU_GPU_CV", (773, 773)), 5299),
    "agx-orin-jp6.txt": (0, 29114, 30697, ("soc1", 48.968), ("VDD_CPU_CV", (4405, 4405)), 4767),
    "orin-nano-jp6.txt": (0, 6185, 7620, ("gpu", 53.343), ("VDD_CPU_GPU_CV", (4667, 4667)), 12479),
    "orin-nx-8gb-jp6.txt": (0, 6982, 7620, ("cv2", 60.875), ("VDD_SOC", (3923, 3515)), 17946),
    "agx-orin-jp7.2.txt": (0, 20642, 62817, ("soc0", 49.531), ("VDD_CPU_CV", (3268, 3268)), 5500),
    "tx1-jp3.txt": (0, 1104, 3995, None, None, None),
}


def test_every_recorded_file_has_expected_values():
    assert {p.name for p in FILES} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_values(name: str):
    index, used, total, temp, rail, input_mw = EXPECTED[name]
    s = parse_line(_lines(DATA / name)[index])
    assert (s.ram_used_mb, s.ram_total_mb) == (used, total)
    if temp is not None:
        assert s.temperatures[temp[0]] == pytest.approx(temp[1])
    if rail is not None:
        assert s.rails[rail[0]] == pytest.approx(rail[1])
    if input_mw is None:
        assert s.input_power_mw is None and s.input_power_rail is None
    else:
        assert s.input_power_mw == pytest.approx(input_mw)


def test_nano_jp4_power_without_unit_and_clocks():
    s = parse_line(_lines(DATA / "jetson-nano-jp4.txt")[0])
    assert s.input_power_rail == "POM_5V_IN"
    assert s.rails["POM_5V_CPU"] == (366.0, 406.0)
    assert [c.freq_mhz for c in s.cpus] == [1224.0] * 4
    assert [c.load_pct for c in s.cpus] == [5.0, 4.0, 3.0, 6.0]
    assert (s.swap_used_mb, s.swap_total_mb, s.swap_cached_mb) == (191, 1982, 6)
    assert (s.emc_load_pct, s.emc_freq_mhz) == (0.0, 1600.0)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (0.0, 76.0)
    assert s.timestamp is None


def test_cores_off_are_kept_as_offline():
    s = parse_line(_lines(DATA / "tx2-jp4.txt")[0])
    assert [c.online for c in s.cpus] == [True, False, False, True, True, True]
    assert s.cpus[1].load_pct is None and s.cpus[1].freq_mhz is None
    assert s.cpus[5].index == 5 and s.cpus[5].load_pct == 2.0 and s.cpus[5].freq_mhz == 345.0
    x = parse_line(_lines(DATA / "agx-xavier-jp4.txt")[1])
    assert sum(c.online for c in x.cpus) == 4 and len(x.cpus) == 8


def test_xavier_rails_have_no_input_rail():
    s = parse_line(_lines(DATA / "agx-xavier-jp4.txt")[0])
    assert set(s.rails) == {"GPU", "CPU", "SOC", "CV", "VDDRQ", "SYS5V"}
    assert s.rails["CPU"] == (618.0, 618.0)
    assert s.temperatures["CPU"] == 31.5  # same name as a rail, kept apart
    assert s.gpu_load_pct == 0.0 and s.gpu_freq_mhz is None  # "GR3D_FREQ 0%" (not root)
    assert s.emc_freq_mhz is None


def test_orin_jp5_two_gpc_fields_absent_sensors_and_nc_channels():
    s = parse_line(_lines(DATA / "agx-orin-jp5.txt")[0])
    assert s.timestamp is not None and s.timestamp.isoformat() == "2023-04-24T00:01:24"
    assert s.gpu_gpc_freqs_mhz == (0.0, 0.0) and s.gpu_load_pct == 0.0
    for absent in ("CV0", "CV1", "CV2", "GPU"):  # printed as -256C
        assert absent not in s.temperatures
    assert s.temperatures["CPU"] == 42.593
    assert "NC" not in s.rails
    assert s.rails["VDDQ_VDD2_1V8AO"] == (301.0, 301.0)
    assert s.input_power_rail == "VIN_SYS_5V0" and s.input_power_mw == 4032.0
    assert s.engines["VIC_FREQ"] == (None, 729.0) and s.engines["APE"] == (None, 174.0)
    assert len(s.cpus) == 12
    bracketed = parse_line(_lines(DATA / "agx-orin-jp5.txt")[1])
    assert bracketed.gpu_gpc_freqs_mhz == (0.0, 0.0)


def test_orin_jp6_bracketed_clocks_engines_off_and_space_runs():
    s = parse_line(_lines(DATA / "agx-orin-jp6.txt")[0])
    assert s.gpu_load_pct == 0.0 and s.gpu_freq_mhz == 305.0
    assert s.gpu_gpc_freqs_mhz == (305.0, 305.0)
    assert s.engines["NVENC"] is None and s.engines["NVDLA1"] is None  # "off"
    assert s.engines["APE"] == (None, 174.0)
    assert (s.swap_used_mb, s.swap_total_mb) == (4915, 15348)
    assert [c.freq_mhz for c in s.cpus][4:6] == [2201.0, 2201.0]
    assert s.cpus[5].load_pct == 100.0
    nano = parse_line(_lines(DATA / "orin-nano-jp6.txt")[0])
    assert (nano.gpu_load_pct, nano.gpu_freq_mhz) == (63.0, 621.0)
    assert (nano.emc_load_pct, nano.emc_freq_mhz) == (43.0, 2133.0)
    no_clock = parse_line(_lines(DATA / "orin-nano-jp6.txt")[1])
    assert no_clock.gpu_load_pct == 0.0 and no_clock.gpu_freq_mhz is None
    assert no_clock.emc_load_pct is None
    nx = parse_line(_lines(DATA / "orin-nx-8gb-jp6.txt")[0])
    assert nx.engines["NVENC"] == (1.0, 115.0) and nx.engines["NVDEC"] == (40.0, 115.0)
    assert nx.engines["NVJPG"] is None
    assert (nx.gpu_load_pct, nx.gpu_freq_mhz) == (84.0, 713.0)
    assert nx.cpus[5].freq_mhz == 247.0


def test_jetpack7_third_values_are_ignored():
    s = parse_line(_lines(DATA / "agx-orin-jp7.2.txt")[0])
    assert s.temperatures["cpu"] == 52.968
    assert s.rails["VDD_GPU_SOC"] == (5139.0, 5139.0)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (12.0, 1300.0)
    assert s.swap_used_mb is None


def test_old_layout_shares_one_cpu_clock():
    s = parse_line(_lines(DATA / "tx1-jp3.txt")[0])
    assert [(c.load_pct, c.freq_mhz) for c in s.cpus] == [
        (2.0, 1734.0),
        (5.0, 1734.0),
        (8.0, 1734.0),
        (11.0, 1734.0),
    ]
    assert (s.emc_load_pct, s.emc_freq_mhz) == (0.0, 1600.0)
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (0.0, 998.0)
    assert s.rails == {} and s.input_power_mw is None


# ------------------------------------------------------------------ parser edge cases
def test_variants_seen_in_nvidia_docs():
    # NVIDIA's table: "CPU [X%,Y%, , ]@Z" (blank = core off); Thor: GPU clock with no load
    s = parse_line("RAM 100/200MB CPU [10%,20%, , ]@345 GR3D_FREQ @[1000,1000,1000]")
    assert [c.online for c in s.cpus] == [True, True, False, False]
    assert s.cpus[1].freq_mhz == 345.0
    assert s.gpu_load_pct is None and s.gpu_freq_mhz == 1000.0
    assert s.gpu_gpc_freqs_mhz == (1000.0,) * 3


def test_unknown_tokens_are_ignored_and_watts_are_converted():
    s = parse_line(
        "RAM 10/20MB FUTURE_ENGINE 7%@9 NEWTHING [1,2] some words VDD_IN 5.5W/5.0W X@-3.5C"
    )
    assert s.rails["VDD_IN"] == (5500.0, 5000.0)
    assert s.input_power_mw == 5500.0
    assert s.temperatures == {"X": -3.5}  # a genuine sub-zero reading is kept
    assert s.engines["FUTURE_ENGINE"] == (7.0, 9.0)


def test_gpu_load_of_two_gpc_fields_is_their_mean():
    s = parse_line("RAM 1/2MB GR3D_FREQ 40%@900 GR3D2_FREQ 20%@800")
    assert s.gpu_load_pct == 30.0 and s.gpu_freq_mhz == 900.0
    assert s.gpu_gpc_freqs_mhz == (900.0, 800.0)


@pytest.mark.parametrize(
    "bad",
    ["", "hello world", "CPU [1%@2] GR3D_FREQ 0%", "VDD_IN 1/2", "Total RAM: 4GB"],
)
def test_non_tegrastats_lines_raise_input_error(bad: str):
    with pytest.raises(InputError) as info:
        parse_line(bad)
    assert isinstance(info.value, RapsamEdgeError) and info.value.hint


@pytest.mark.parametrize("bad", [None, b"RAM 1/2MB", 42])
def test_non_strings_raise_input_error(bad):
    with pytest.raises(InputError):
        parse_line(bad)


def test_sample_is_frozen():
    s = parse_line(_lines(DATA / "orin-nano-jp6.txt")[0])
    with pytest.raises(AttributeError):
        s.ram_used_mb = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        s.rails["VDD_IN"] = (0.0, 0.0)  # type: ignore[index]


def test_summarize_recorded_lines():
    samples = [parse_line(line) for line in _lines(DATA / "orin-nano-jp6.txt")]
    out = summarize(samples)
    assert out["samples"] == 2
    assert out["input_power_w"] == {
        "rail": "VDD_IN",
        "mean": pytest.approx(8.6515, abs=1e-3),
        "max": 12.479,
    }
    assert out["power_w"]["VDD_SOC"] == {"mean": 2.146, "max": 2.817}
    assert out["temperature_max_c"]["tj"] == 53.968
    assert out["gpu_load_pct_mean"] == 31.5  # (63 + 0) / 2
    assert out["gpu_freq_mhz_mean"] == 621.0  # the second line has no clock
    assert out["cpu_freq_mhz_mean"] == pytest.approx((729 * 6 + 1420 * 4 + 729 * 2) / 12, 1e-3)
    assert out["ram_used_mb_max"] == 6185
    json.dumps(out)
    empty = summarize([])
    assert empty["samples"] == 0 and empty["input_power_w"] is None
    assert empty["gpu_load_pct_mean"] is None and empty["power_w"] == {}


# ------------------------------------------------------------------ sampler
FAKE_TEGRASTATS = """#!{python}
import sys, time
args = sys.argv[1:]
with open({args_file!r}, "w") as f:
    f.write(" ".join(args))
interval = int(args[args.index("--interval") + 1]) / 1000.0
lines = [l for l in open({data!r}).read().splitlines() if l and not l.startswith("#")]
print("a banner that is not a sample", flush=True)
i = 0
while True:
    print(lines[i % len(lines)], flush=True)
    i += 1
    time.sleep(interval)
"""


@pytest.fixture
def fake_tegrastats(tmp_path, monkeypatch):
    """A `tegrastats` on PATH that prints the recorded Orin Nano lines every --interval ms."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    args_file = tmp_path / "args.txt"
    exe = bindir / "tegrastats"
    exe.write_text(
        FAKE_TEGRASTATS.format(
            python=sys.executable, args_file=str(args_file), data=str(DATA / "orin-nano-jp6.txt")
        )
    )
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    return args_file


def _wait_for(sampler: TegraStatsSampler, n: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(sampler.samples) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(sampler.samples) >= n, "the fake tegrastats printed nothing"


def _assert_reaped(sampler: TegraStatsSampler) -> None:
    proc = sampler._proc
    assert proc is not None and proc.returncode is not None
    with pytest.raises(ChildProcessError):  # already reaped: no zombie left behind
        os.waitpid(proc.pid, os.WNOHANG)
    assert sampler._thread is not None and not sampler._thread.is_alive()


@pytest.mark.skipif(os.name != "posix", reason="the fake tegrastats is a POSIX script")
def test_sampler_records_and_stops_cleanly(fake_tegrastats: Path):
    sampler = TegraStatsSampler(interval_ms=20)
    assert sampler.available
    with sampler as tegra:
        _wait_for(tegra, 3)
    _assert_reaped(sampler)
    assert fake_tegrastats.read_text() == "--interval 20"
    out = sampler.summary()
    assert out["available"] is True and out["interval_ms"] == 20
    assert out["samples"] >= 3 and out["skipped_lines"] == 1  # the banner
    assert out["input_power_w"]["rail"] == "VDD_IN"
    assert 4.824 <= out["input_power_w"]["mean"] <= 12.479
    assert out["input_power_w"]["max"] == 12.479
    assert out["temperature_max_c"]["tj"] == 53.968
    assert set(out["power_w"]) == {"VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"}
    assert out["gpu_load_pct_mean"] is not None and out["cpu_freq_mhz_mean"] is not None
    assert out["duration_s"] > 0
    n = out["samples"]
    time.sleep(0.1)
    assert sampler.summary()["samples"] == n  # nothing recorded after exit
    assert sampler.stop() == sampler.summary()  # idempotent
    json.dumps(out)


@pytest.mark.skipif(os.name != "posix", reason="the fake tegrastats is a POSIX script")
def test_sampler_stops_when_the_body_raises(fake_tegrastats: Path):
    sampler = TegraStatsSampler(interval_ms=20)
    with pytest.raises(RuntimeError, match="boom"), sampler:
        _wait_for(sampler, 1)
        raise RuntimeError("boom")
    _assert_reaped(sampler)
    assert sampler.summary()["samples"] >= 1


def test_sampler_without_tegrastats_is_a_no_op(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with TegraStatsSampler() as tegra:
        pass
    assert tegra.available is False
    out = tegra.summary()
    assert out["available"] is False and out["samples"] == 0 and out["duration_s"] == 0.0
    assert out["input_power_w"] is None


@pytest.mark.skipif(os.name != "posix", reason="exec format errors are POSIX")
def test_sampler_with_a_tegrastats_that_cannot_run(tmp_path, monkeypatch):
    exe = tmp_path / "tegrastats"
    exe.write_bytes(b"\x00\x01 not a program")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    sampler = TegraStatsSampler()
    assert sampler.available  # found on PATH ...
    with sampler:
        pass
    assert not sampler.available and "Error" in sampler.error  # ... but could not start
    out = sampler.summary()
    assert out["samples"] == 0 and out["error"] == sampler.error


@pytest.mark.parametrize("bad", [0, -5, 1.5, "100", True, None])
def test_sampler_rejects_bad_interval(bad):
    with pytest.raises(ConfigError):
        TegraStatsSampler(interval_ms=bad)


# ------------------------------------------------------------------ memory
def test_rss_readings():
    peak = peak_rss_mib()
    assert 1.0 < peak < 1024 * 1024
    now = current_rss_mib()
    if Path("/proc/self/statm").exists():
        assert now is not None and 1.0 < now <= peak + 1.0
    else:
        assert now is None


def test_current_rss_is_none_without_proc(monkeypatch, tmp_path):
    monkeypatch.setattr(mem, "_STATM", tmp_path / "absent")
    assert current_rss_mib() is None


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")
def test_memory_tracker_sees_the_body_peak():
    with MemoryTracker(interval_ms=5) as tracker:
        block = bytearray(96 << 20)  # 96 MiB, touched
        block[::4096] = b"\1" * len(range(0, len(block), 4096))
        time.sleep(0.05)
        del block
    out = tracker.summary()
    assert out["body_peak_rss_mib"] >= out["rss_at_entry_mib"] + 64
    assert out["peak_rss_mib"] >= out["peak_rss_at_entry_mib"]
    assert out["peak_rss_growth_mib"] >= 0
    assert out["rss_samples"] >= 2
    assert "gpu" in out
    json.dumps(out)


def test_memory_tracker_without_sampling_or_gpu():
    with MemoryTracker(interval_ms=None, gpu=False) as tracker:
        pass
    out = tracker.summary()
    assert out["gpu"] is None and out["peak_rss_mib"] is not None
    assert out["rss_samples"] in (0, 2)  # 0 where the platform has no /proc


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_memory_samplers_reject_bad_interval(bad):
    with pytest.raises(ConfigError):
        MemoryTracker(interval_ms=bad)
    with pytest.raises(ConfigError):
        GpuMemorySampler(interval_ms=bad)


def test_gpu_memory_for_real():
    out = gpu_memory()  # no NVML here: None; on a GPU machine with pynvml, a list
    assert out is None or (isinstance(out, list) and {"index", "name"} <= set(out[0]))


def test_gpu_memory_when_pynvml_is_absent(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    assert gpu_memory() is None
    with GpuMemorySampler() as gpu:
        pass
    assert gpu.available is False and gpu.summary() is None


class _FakeNvml(types.ModuleType):
    """The part of pynvml (nvidia-ml-py) the memory module uses; GPU 0's used memory grows
    by 100 MiB on each read up to a peak, then drops back."""

    class NVMLError(Exception):
        pass

    def __init__(self, *, init_fails: bool = False, gpus: int = 2) -> None:
        super().__init__("pynvml")
        self.init_fails, self.gpus = init_fails, gpus
        self.inits = self.shutdowns = self.reads = 0

    def nvmlInit(self) -> None:
        if self.init_fails:
            raise self.NVMLError("Driver Not Loaded")
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, i: int) -> str:
        return f"handle{i}"

    def nvmlDeviceGetName(self, handle: str):
        return b"NVIDIA H200" if handle == "handle0" else "Orin (nvgpu)"

    def nvmlDeviceGetMemoryInfo(self, handle: str):
        if handle == "handle1":
            raise self.NVMLError("Not Supported")  # as on a Jetson iGPU
        self.reads += 1
        used = 1000 + 100 * min(self.reads, 5) if self.reads < 8 else 1000
        return types.SimpleNamespace(used=used << 20, total=4000 << 20, free=0)


def test_gpu_memory_through_fake_nvml(monkeypatch):
    nvml = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    out = gpu_memory()
    assert out == [{"index": 0, "name": "NVIDIA H200", "used_mib": 1100.0, "total_mib": 4000.0}]
    assert nvml.inits == nvml.shutdowns == 1


def test_gpu_memory_when_nvml_cannot_start(monkeypatch):
    nvml = _FakeNvml(init_fails=True)
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert gpu_memory() is None
    with GpuMemorySampler() as gpu:
        pass
    assert gpu.summary() is None and nvml.shutdowns == 0
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml(gpus=0))
    assert gpu_memory() is None


def test_gpu_memory_sampler_tracks_the_peak(monkeypatch):
    nvml = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    with GpuMemorySampler(interval_ms=1) as gpu:
        deadline = time.monotonic() + 5
        while nvml.reads < 10 and time.monotonic() < deadline:
            time.sleep(0.005)
    out = gpu.summary()
    assert gpu.available and len(out) == 1  # the device without memory info is left out
    (g,) = out
    assert g["index"] == 0 and g["name"] == "NVIDIA H200" and g["total_mib"] == 4000.0
    assert g["used_mib_at_entry"] == 1100.0
    assert g["peak_used_mib"] == 1500.0 and g["peak_growth_mib"] == 400.0
    assert g["used_mib_last"] == 1000.0  # dropped back after the peak
    assert g["polls"] >= 2
    assert nvml.inits == nvml.shutdowns == 1
    reads = nvml.reads
    time.sleep(0.02)
    assert nvml.reads == reads  # the thread stopped
    json.dumps(out)


def test_memory_tracker_reads_gpu_memory_at_exit(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    with MemoryTracker(interval_ms=None) as tracker:
        pass
    (g,) = tracker.summary()["gpu"]
    assert g["name"] == "NVIDIA H200" and g["total_mib"] == 4000.0
