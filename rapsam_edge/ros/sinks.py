"""``rapsam-edge run --record FILE.mcap --view [FILE.rrd | URL]``: the outputs checked before
the bundle loads (``check_sinks``), then opened on the Segmenter (``open_sinks``) and given
to ``apps.video.process_stream``, which writes every (frame, result) pair of its one loop to
each and closes them at the end.

``--view`` without a value spawns the Rerun viewer; a value with ``://`` connects to a
running viewer (``rerun+http://HOST:PORT/proxy``, ``view.check_viewer_url``); any other value
is the ``.rrd`` file to save. ``--overwrite`` lets both replace existing files (a recording is
refused otherwise, before the bundle loads)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._optional import require
from .outputs import check_output_file

__all__ = ["SinkSpec", "check_sinks", "open_sinks"]


@dataclass(frozen=True)
class SinkSpec:
    """What ``--record`` / ``--view`` / ``--overwrite`` asked for (checked)."""

    record: Path | None = None
    view_mode: str | None = None  # "spawn", "save" or "connect"
    view_target: str | Path | None = None
    overwrite: bool = False

    @property
    def any(self) -> bool:
        return self.record is not None or self.view_mode is not None


def check_sinks(record: str | Path | None, view: str | None, overwrite: bool) -> SinkSpec:
    """Check ``--record`` / ``--view`` before any work: the paths (suffix, existing folder, an
    existing file only with ``overwrite``), the viewer URL, and that mcap / rerun-sdk import.

    Arguments:
      record: the ``.mcap`` path, or None. view: None (no view), "" (spawn a viewer), a
        ``scheme://`` URL (connect) or an ``.rrd`` path (save).
    Raises:
      OutputError / OutputExistsError: a bad or existing path. ConfigError: a bad viewer
      URL. MissingDependencyError: the package a sink needs is missing."""
    from .record import MCAP_SUFFIXES
    from .view import RRD_SUFFIXES, check_display, check_viewer_url

    rec_path = None
    if record is not None:
        rec_path = check_output_file(record, "the MCAP recording", MCAP_SUFFIXES, overwrite)
        require("mcap.writer")
        require("mcap_ros2._dynamic")
    mode: str | None = None
    target: str | Path | None = None
    if view is not None:
        if view == "":
            mode = "spawn"
            check_display()
        elif "://" in view:
            mode, target = "connect", check_viewer_url(view)
        else:
            mode = "save"
            target = check_output_file(view, "the Rerun recording", RRD_SUFFIXES, overwrite)
            if rec_path is not None and Path(target).resolve() == rec_path.resolve():
                from ..errors import OutputError

                raise OutputError(f"--record and --view name the same file {str(target)!r}")
        require("rerun")
    return SinkSpec(rec_path, mode, target, overwrite)


def open_sinks(seg: Any, spec: SinkSpec) -> list[Any]:
    """The ``Recorder`` / ``RerunView`` of ``spec`` on ``seg`` (one that fails to open drops
    those opened before it)."""
    from .record import Recorder
    from .view import RerunView

    sinks: list[Any] = []
    try:
        if spec.record is not None:
            sinks.append(Recorder.for_segmenter(spec.record, seg, overwrite=spec.overwrite))
        if spec.view_mode == "spawn":
            sinks.append(RerunView.for_segmenter(seg, spawn=True))
        elif spec.view_mode == "connect":
            sinks.append(RerunView.for_segmenter(seg, connect=str(spec.view_target)))
        elif spec.view_mode == "save":
            sinks.append(
                RerunView.for_segmenter(seg, save=spec.view_target, overwrite=spec.overwrite)
            )
    except BaseException:
        for sink in sinks:
            sink.abort()
        raise
    return sinks
