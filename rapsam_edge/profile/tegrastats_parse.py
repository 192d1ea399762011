"""The parser of NVIDIA's ``tegrastats`` lines (torch-free, stdlib only): ``parse_line(line)``
turns one line into a :class:`TegraSample`. The sampler and the summary are in
:mod:`rapsam_edge.profile.tegrastats`, which re-exports these names.

The format is NVIDIA's: the "tegrastats Utility" / "Reported Statistics" table of the Jetson
Linux (L4T) developer guides, e.g.
https://docs.nvidia.com/jetson/archives/l4t-archived/l4t-3231/index.html#page/Tegra%20Linux%20Driver%20Package%20Development%20Guide/AppendixTegraStats.html
and https://developer.nvidia.com/docs/drive/drive-os/6.0.9.1/public/drive-os-linux-sdk/common/topics/util_setup/ReportedStatistics4.html
The spellings that differ between boards and JetPack versions were taken from real lines
published by users and projects; they are stored, with their sources, under
``tests/data/tegrastats/`` and every one of them is parsed by the tests:

=====================  =================================================================
field                  spellings seen
=====================  =================================================================
timestamp              absent (JetPack <= 4), ``MM-DD-YYYY HH:MM:SS`` first (JetPack >= 5)
CPU                    ``CPU [2%@1190,off,...]`` per core; ``cpu [2%,5%,...]@1734`` (old
                       L4T, TX1, one clock for all cores); ``off`` (or an empty slot in
                       NVIDIA's table) = core powered down
GPU                    ``GR3D_FREQ 0%`` (no clock without root), ``GR3D_FREQ 0%@76``,
                       ``GR3D_FREQ 0%@0 GR3D2_FREQ 0%@0`` (AGX Orin, JetPack 5.0/5.1, one
                       per GPC), ``GR3D_FREQ 0%@[305,305]`` (JetPack >= 5.1.2, per GPC),
                       ``GR3D_FREQ @[1000,1000]`` (no load; Thor, per jetson-stats),
                       ``GR3D 0%@998`` (old L4T)
memory clock           ``EMC_FREQ 0%``, ``EMC_FREQ 2%@1866``, ``EMC 0%@1600``
temperatures           ``CPU@41.375C``, ``cpu@47.5C`` (JetPack 6), ``cpu@52.9C/52.9C``
                       (JetPack 7); ``-256C`` = sensor absent or powered off
power rails            ``POM_5V_IN 1211/1211`` (Nano, mW, no unit), ``GPU 0/0 CPU 310/310
                       SOC 1241/1241`` (AGX Xavier), ``VDD_GPU_SOC 2396mW/2396mW`` (Orin),
                       ``VDD_IN 5139mW/5139mW/5139mW`` (JetPack 7; a third value)
=====================  =================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from ..errors import InputError

__all__ = ["INPUT_RAILS", "CpuCore", "TegraSample", "parse_line"]

#: rails taken as the module's input power, in this order: ``VDD_IN`` (TX1/TX2, Xavier NX,
#: Orin NX / Nano), ``POM_5V_IN`` (Nano), ``VIN_SYS_5V0`` (AGX Orin, which has no ``VDD_IN``;
#: its 5 V system input, metered beside ``VDD_GPU_SOC`` and ``VDD_CPU_CV``, so compare it
#: only between AGX Orin runs). ``input_power_rail`` names the one used.
INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "VIN_SYS_5V0")

#: temperatures at or below this are tegrastats' placeholders for an absent or powered-off
#: sensor (``-256C`` on Orin), not readings; genuine sub-zero readings are kept
_ABSENT_TEMP_C = -100.0
#: rails tegrastats lists for unconnected monitor channels (``NC 0mW/0mW`` on AGX Orin)
_UNCONNECTED_RAILS = frozenset({"NC"})

_UNIT_MB = {"k": 1 / 1024, "K": 1 / 1024, "M": 1.0, "G": 1024.0}
_NUM = r"\d+(?:\.\d+)?"
_TIMESTAMP_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{4}) (\d{2}):(\d{2}):(\d{2})(?=\s|$)")
_RAM_RE = re.compile(r"\bRAM (\d+)/(\d+)([kKMG])B(?:\s*\(lfb [^)]*\))?")
_SWAP_RE = re.compile(r"\bSWAP (\d+)/(\d+)([kKMG])B(?:\s*\(cached (\d+)([kKMG])B\))?")
_IRAM_RE = re.compile(r"\bIRAM \d+/\d+[kKMG]B\s*(?:\(lfb [^)]*\))?")
_CPU_RE = re.compile(r"\bCPU \[([^\]]*)\](?:@(\d+))?", re.IGNORECASE)
_MTS_RE = re.compile(r"\bMTS fg \d+% bg \d+%")
_RAIL_RE = re.compile(
    rf"(?<!\S)([A-Z][A-Z0-9_]*)\s+({_NUM})(mW|W)?/({_NUM})(mW|W)?(?:/({_NUM})(mW|W)?)?(?=\s|$)"
)
_TEMP_RE = re.compile(rf"(?<!\S)([A-Za-z][A-Za-z0-9_\-]*)@(-?{_NUM})C(?:/(-?{_NUM})C)?(?=\s|$)")
_CLOCK = r"(?:\[[\d,]*\]|\d+)"
_ENGINE_RE = re.compile(
    rf"(?<!\S)([A-Z][A-Z0-9_]*)\s+(off|{_NUM}%(?:@{_CLOCK})?|@{_CLOCK}|\d+)(?=\s|$)"
)
_ENGINE_VALUE_RE = re.compile(
    rf"(?:(?P<load>{_NUM})%)?(?:@(?:\[(?P<arr>[\d,]*)\]|(?P<at>\d+)))?|(?P<plain>\d+)"
)

_EMC_NAMES = ("EMC_FREQ", "EMC")
_GPU_NAMES = ("GR3D_FREQ", "GR3D")
_GPU2_NAMES = ("GR3D2_FREQ",)


@dataclass(frozen=True)
class CpuCore:
    """One CPU core in a tegrastats line.

    Attributes:
      index: core number, in the order tegrastats lists them (0-based).
      load_pct: load in % (0-100) relative to the core's current clock; None when the core
        is off (powered down / hot-unplugged).
      freq_mhz: clock in MHz; None when off or not reported.
    """

    index: int
    load_pct: float | None
    freq_mhz: float | None

    @property
    def online(self) -> bool:
        """False when tegrastats reported the core ``off``."""
        return self.load_pct is not None


@dataclass(frozen=True)
class TegraSample:
    """One parsed tegrastats line. Sizes in MB (tegrastats' MB are MiB), clocks in MHz,
    loads in %, temperatures in °C, power in mW; None where the line does not say.

    Attributes:
      timestamp: the line's own ``MM-DD-YYYY HH:MM:SS`` stamp (JetPack >= 5), naive local
        time; None on older versions.
      ram_used_mb, ram_total_mb: RAM in use / total available to applications.
      swap_used_mb, swap_total_mb, swap_cached_mb: swap (None without a SWAP field).
      cpus: one :class:`CpuCore` per core listed.
      emc_load_pct, emc_freq_mhz: external memory controller load and clock.
      gpu_load_pct: GR3D (iGPU) load; the mean of the GPCs' when each has its own field.
      gpu_freq_mhz: GR3D clock, the highest of the GPCs' (None without root on some
        versions, which print ``GR3D_FREQ 0%`` only).
      gpu_gpc_freqs_mhz: per-GPC clocks (``@[305,305]`` or ``GR3D_FREQ`` + ``GR3D2_FREQ``).
      engines: other engines, name -> (load % or None, clock MHz or None), or None when
        the engine is ``off`` (NVENC, NVDEC, VIC, APE, ...).
      temperatures: sensor -> °C as named by tegrastats (``CPU``, ``cpu``, ``tj``, ...);
        placeholder readings of absent sensors (``-256C``) are left out.
      rails: power rail -> (current mW, average mW) as tegrastats prints them (rails
        without a unit are mW; a third value on JetPack 7 is left out). Unconnected
        channels (``NC``) are left out.
      input_power_mw: the current value of the module-input rail (first of
        :data:`INPUT_RAILS` present), or None where no rail measures the input (e.g. AGX
        Xavier's ``GPU CPU SOC CV VDDRQ SYS5V``).
      input_power_rail: the name of that rail, or None.
    """

    timestamp: datetime | None
    ram_used_mb: int
    ram_total_mb: int
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    swap_cached_mb: int | None = None
    cpus: tuple[CpuCore, ...] = ()
    emc_load_pct: float | None = None
    emc_freq_mhz: float | None = None
    gpu_load_pct: float | None = None
    gpu_freq_mhz: float | None = None
    gpu_gpc_freqs_mhz: tuple[float, ...] = ()
    engines: Mapping[str, tuple[float | None, float | None] | None] = field(
        default_factory=lambda: MappingProxyType({})
    )
    temperatures: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    rails: Mapping[str, tuple[float, float]] = field(default_factory=lambda: MappingProxyType({}))
    input_power_mw: float | None = None
    input_power_rail: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready copy (timestamp as ISO 8601, tuples as lists)."""
        return {
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "ram_used_mb": self.ram_used_mb,
            "ram_total_mb": self.ram_total_mb,
            "swap_used_mb": self.swap_used_mb,
            "swap_total_mb": self.swap_total_mb,
            "swap_cached_mb": self.swap_cached_mb,
            "cpus": [
                {"index": c.index, "load_pct": c.load_pct, "freq_mhz": c.freq_mhz}
                for c in self.cpus
            ],
            "emc_load_pct": self.emc_load_pct,
            "emc_freq_mhz": self.emc_freq_mhz,
            "gpu_load_pct": self.gpu_load_pct,
            "gpu_freq_mhz": self.gpu_freq_mhz,
            "gpu_gpc_freqs_mhz": list(self.gpu_gpc_freqs_mhz),
            "engines": {k: list(v) if v else None for k, v in self.engines.items()},
            "temperatures": dict(self.temperatures),
            "rails": {k: list(v) for k, v in self.rails.items()},
            "input_power_mw": self.input_power_mw,
            "input_power_rail": self.input_power_rail,
        }


def _mb(value: str, unit: str) -> int:
    return round(int(value) * _UNIT_MB[unit])


def _mw(value: str, unit: str | None) -> float:
    return float(value) * (1000.0 if unit == "W" else 1.0)


def _blank(text: str, match: re.Match[str]) -> str:
    """``text`` with ``match``'s span replaced by NULs: positions are kept, and the fields
    still to be found cannot run across a consumed one (NUL is not whitespace)."""
    a, b = match.span()
    return text[:a] + "\0" * (b - a) + text[b:]


def _cpus(body: str, shared_mhz: str | None) -> tuple[CpuCore, ...]:
    cores = []
    for i, item in enumerate(body.split(",")):
        item = item.strip()
        m = re.fullmatch(rf"({_NUM})%(?:@(\d+))?", item)
        if m is None:  # "off", or an empty slot ("CPU [X%,Y%, , ]@Z" in NVIDIA's table)
            cores.append(CpuCore(i, None, None))
            continue
        mhz = m.group(2) or shared_mhz
        cores.append(CpuCore(i, float(m.group(1)), float(mhz) if mhz else None))
    return tuple(cores)


def _engine(value: str) -> tuple[float | None, tuple[float, ...]] | None:
    """(load % or None, clocks MHz) of an engine value, None when ``off``."""
    if value == "off":
        return None
    m = _ENGINE_VALUE_RE.fullmatch(value)
    assert m is not None, value  # every value _ENGINE_RE accepts is one of these spellings
    load = float(m["load"]) if m["load"] is not None else None
    if m["arr"] is not None:
        clocks = tuple(float(x) for x in m["arr"].split(",") if x)
    elif m["at"] is not None:
        clocks = (float(m["at"]),)
    elif m["plain"] is not None:  # "APE 174", "VIC_FREQ 729": a clock alone
        clocks = (float(m["plain"]),)
    else:
        clocks = ()
    return load, clocks


def parse_line(line: str) -> TegraSample:
    """Parse one line of ``tegrastats`` output.

    Every version's spelling of the fields is accepted (see the module docstring); fields
    this parser does not know are ignored, so lines of future versions still parse.

    Arguments:
      line: one line as printed by ``tegrastats`` (trailing newline allowed).
    Returns:
      the :class:`TegraSample` (units: MB, MHz, %, °C, mW).
    Raises:
      InputError: ``line`` is not a string, or not tegrastats output (it has no
        ``RAM used/totalMB`` field, which every version prints).
    """
    if not isinstance(line, str):
        raise InputError(f"tegrastats line must be a str, got {type(line).__name__}")
    text = line.strip()
    ram = _RAM_RE.search(text)
    if ram is None:
        shown = text if len(text) <= 80 else text[:77] + "..."
        raise InputError(
            f"not a tegrastats line (no 'RAM used/totalMB' field): {shown!r}",
            hint="pass lines printed by NVIDIA's `tegrastats` on a Jetson",
        )
    # each field is blanked out of ``text`` once read, in this order, so that the later,
    # looser patterns (rails, temperatures, engines) cannot match inside an earlier field
    out: dict[str, Any] = {}
    text = _read_timestamp(text, out)
    text = _blank(text, ram)
    out["ram_used_mb"] = _mb(ram.group(1), ram.group(3))
    out["ram_total_mb"] = _mb(ram.group(2), ram.group(3))
    text = _read_swap(text, out)
    for regex in (_IRAM_RE, _MTS_RE):
        m = regex.search(text)
        if m is not None:
            text = _blank(text, m)
    cpu = _CPU_RE.search(text)
    if cpu is not None:
        out["cpus"] = _cpus(cpu.group(1), cpu.group(2))
        text = _blank(text, cpu)
    rails, text = _read_rails(text)
    temps, text = _read_temperatures(text)
    out["engines"] = MappingProxyType(_read_engines(text, out))
    out["temperatures"] = MappingProxyType(temps)
    out["rails"] = MappingProxyType(rails)
    for rail in INPUT_RAILS:
        if rail in rails:
            out["input_power_mw"] = rails[rail][0]
            out["input_power_rail"] = rail
            break
    return TegraSample(**out)


def _read_timestamp(text: str, out: dict[str, Any]) -> str:
    """Sets ``out["timestamp"]`` (None when absent or not a date); returns ``text`` with the
    stamp blanked."""
    out["timestamp"] = None
    ts = _TIMESTAMP_RE.match(text)
    if ts is None:
        return text
    mo, day, year, hh, mm, ss = (int(g) for g in ts.groups())
    try:
        out["timestamp"] = datetime(year, mo, day, hh, mm, ss)
    except ValueError:
        out["timestamp"] = None
    return _blank(text, ts)


def _read_swap(text: str, out: dict[str, Any]) -> str:
    swap = _SWAP_RE.search(text)
    if swap is None:
        return text
    out["swap_used_mb"] = _mb(swap.group(1), swap.group(3))
    out["swap_total_mb"] = _mb(swap.group(2), swap.group(3))
    if swap.group(4) is not None:
        out["swap_cached_mb"] = _mb(swap.group(4), swap.group(5))
    return _blank(text, swap)


def _read_rails(text: str) -> tuple[dict[str, tuple[float, float]], str]:
    """(rail -> (current mW, average mW), ``text`` with the rails blanked); the first
    reading of a name wins, unconnected channels are left out."""
    rails: dict[str, tuple[float, float]] = {}
    for m in list(_RAIL_RE.finditer(text)):
        name = m.group(1)
        if name not in _UNCONNECTED_RAILS and name not in rails:
            rails[name] = (_mw(m.group(2), m.group(3)), _mw(m.group(4), m.group(5)))
        text = _blank(text, m)
    return rails, text


def _read_temperatures(text: str) -> tuple[dict[str, float], str]:
    """(sensor -> °C without absent-sensor placeholders, ``text`` with them blanked)."""
    temps: dict[str, float] = {}
    for m in list(_TEMP_RE.finditer(text)):
        value = float(m.group(2))
        if value > _ABSENT_TEMP_C and m.group(1) not in temps:
            temps[m.group(1)] = value
        text = _blank(text, m)
    return temps, text


def _read_engines(
    text: str, out: dict[str, Any]
) -> dict[str, tuple[float | None, float | None] | None]:
    """The other engines (name -> (load, highest clock) or None when off); sets the EMC and
    GPU (GR3D) fields of ``out`` on the way."""
    engines: dict[str, tuple[float | None, float | None] | None] = {}
    gpcs: list[tuple[float | None, tuple[float, ...]]] = []
    for m in _ENGINE_RE.finditer(text):
        name, parsed = m.group(1), _engine(m.group(2))
        if name in _EMC_NAMES:
            if parsed is not None:
                out["emc_load_pct"] = parsed[0]
                out["emc_freq_mhz"] = parsed[1][0] if parsed[1] else None
        elif name in _GPU_NAMES or name in _GPU2_NAMES:
            if parsed is not None:
                gpcs.append(parsed)
        elif name not in engines:
            if parsed is None:
                engines[name] = None
            else:
                engines[name] = (parsed[0], max(parsed[1]) if parsed[1] else None)
    if gpcs:
        loads = [g[0] for g in gpcs if g[0] is not None]
        clocks = tuple(c for g in gpcs for c in g[1])
        out["gpu_load_pct"] = sum(loads) / len(loads) if loads else None
        out["gpu_gpc_freqs_mhz"] = clocks
        out["gpu_freq_mhz"] = max(clocks) if clocks else None
    return engines
