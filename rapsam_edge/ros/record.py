"""Record the node's ROS 2 messages to an MCAP file that Foxglove and ``ros2 bag`` open.

    seg = Segmenter()
    with Recorder("out.mcap", OutputInfo.of(seg)) as rec:
        for frame, result in seg.stream("clip.mp4"):
            rec.write(frame, result)          # stamp: now (or stamp_ns=..., header=...)

The file follows the ``ros2 bag`` MCAP conventions: profile ``ros2``, one schema per message
type named ``pkg/msg/Name`` with encoding ``ros2msg`` (the full definition text,
``msgdefs.definition``), channels with message encoding ``cdr`` on the absolute topic names
(``/`` + the names of ``topics.TOPICS``, under ``namespace``), each channel's metadata holding
``offered_qos_profiles`` (so ``ros2 bag play`` re-publishes ``label_info`` transient local).
Each message's log and publish times are its header stamp. ``label_info`` is written once,
with the header of the first frame that has a panoptic / track result (a ``task="prompt"``
recording has none: it has no class map to describe).

The file is written under a temporary name beside ``path`` (``.NAME.HEX.partial``) and
renamed when ``close()`` succeeds, so ``path`` only ever holds a finished recording; a ``with``
block that raises still closes it (frames written so far are kept, the file is valid MCAP)
unless writing itself failed, in which case the partial file is removed. A recorder never
closed is finished when it is garbage-collected or the interpreter exits, with a
``ResourceWarning`` and a logged WARNING (``_closing``). A process killed outright leaves the
temporary file: its messages are in zstd chunks of at most ``chunk_size`` bytes written as
they fill, so every complete chunk is readable (``mcap recover`` rewrites it as a finished
file; mcap's stream reader reads the messages up to the cut).
Serialisation is ``mcap-ros2-support``'s CDR encoder; the tests decode with ``rosbags``, an
independent implementation.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from ..apps.writers import check_written
from ..errors import InputError, OutputError, OutputExistsError
from ..runtime.results import PanopticResult, PromptTrackResult, TrackResult
from . import msgdefs
from ._closing import finish_unclosed, track, untrack
from ._optional import require
from .messages import Msg, check_fps, check_header, check_message, make_header
from .outputs import (
    FpsMeter,
    OutputInfo,
    check_output_file,
    frame_messages,
    label_info_message,
    split_result,
)
from .topics import QOS, TOPICS, QosSpec

__all__ = ["MCAP_SUFFIXES", "Recorder", "qos_yaml", "topic_name"]

MCAP_SUFFIXES = frozenset({".mcap"})
#: rmw enum values as ``ros2 bag`` writes them in ``offered_qos_profiles``
_RELIABILITY = {"reliable": 1, "best_effort": 2}
_DURABILITY = {"transient_local": 1, "volatile": 2}
_KEEP_LAST = 1


def qos_yaml(spec: QosSpec) -> str:
    """``offered_qos_profiles`` of one publisher, the YAML ``ros2 bag record`` stores (durations
    0: the rmw default, infinite)."""
    zero = "\n    sec: 0\n    nsec: 0"
    return (
        f"- history: {_KEEP_LAST}\n  depth: {spec.depth}\n"
        f"  reliability: {_RELIABILITY[spec.reliability]}\n"
        f"  durability: {_DURABILITY[spec.durability]}\n"
        f"  deadline:{zero}\n  lifespan:{zero}\n  liveliness: 1\n"
        f"  liveliness_lease_duration:{zero}\n  avoid_ros_namespace_conventions: false"
    )


def topic_name(topic: str, namespace: str = "/") -> str:
    """The absolute name of a ``TOPICS`` topic under ``namespace`` ("/front" -> "/front/image")."""
    ns = "/" + namespace.strip("/")
    return (ns.rstrip("/") + "/" + topic) if ns != "/" else "/" + topic


_NAMESPACE = re.compile(r"/?([A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*)?/?")


def _check_options(namespace: Any, *, chunk_size: Any, **flags: Any) -> None:
    """Raises InputError for a namespace that is not a ROS 2 name, a flag that is not a
    bool, or a chunk size that is not an int in 1 .. 1 GiB."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise InputError(
            f"namespace {namespace!r} is not a ROS 2 namespace ('/', '/front', 'robot/cam')"
        )
    for name, value in flags.items():
        if not isinstance(value, bool):
            raise InputError(f"{name} must be True or False, got {value!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise InputError(f"chunk_size must be an int, got {type(chunk_size).__name__}")
    if not 1 <= chunk_size <= 1 << 30:
        raise InputError(f"chunk_size must be in 1 .. 2**30 bytes, got {chunk_size}")


class Recorder:
    """An MCAP recording of the node's output topics (``topics.TOPICS``, direction "out")."""

    def __init__(
        self,
        path: str | Path,
        info: OutputInfo,
        *,
        overwrite: bool = False,
        frame_id: str = "camera",
        namespace: str = "/",
        overlay: bool = True,
        chunk_size: int = 4 * 1024 * 1024,
    ) -> None:
        """
        Arguments:
          path: the ``.mcap`` file to write.
          info: class names, colour order, threshold, backend (``OutputInfo.of(seg)``).
          overwrite: replace an existing file (else ``OutputExistsError``).
          frame_id: the headers' frame id when ``write`` makes the header.
          namespace: the node's namespace (topic names are written under it).
          overlay: record ``debug/overlay`` (the largest topic after compression).
          chunk_size: MCAP chunk size in bytes (zstd-compressed chunks).
        Raises:
          OutputError: the path is a directory, a pipe or device, has another suffix, or its
            folder does not exist. OutputExistsError: it exists and ``overwrite`` is False.
          InputError: a bad frame id, namespace, chunk size, or a flag that is not a bool.
          MissingDependencyError: ``mcap`` / ``mcap-ros2-support`` are not installed.
        """
        self.path = check_output_file(path, "the MCAP recording", MCAP_SUFFIXES, overwrite)
        _check_options(namespace, overwrite=overwrite, overlay=overlay, chunk_size=chunk_size)
        make_header(0, frame_id)  # checks the frame id
        self.overwrite = overwrite
        self.info, self.frame_id, self.overlay = info, frame_id, overlay
        self.namespace = namespace
        mcap_writer = require("mcap.writer")
        self._serialize = require("mcap_ros2._dynamic").serialize_dynamic
        # a new file beside ``path`` (the umask's mode, as ``open`` gives), renamed at close
        self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.partial")
        try:
            self._file: IO[bytes] | None = open(self._tmp, "xb")
        except OSError as e:
            raise OutputError(f"cannot write the MCAP recording {str(self.path)!r}: {e}") from None
        self._writer: Any = mcap_writer.Writer(
            self._file, chunk_size=chunk_size, compression=mcap_writer.CompressionType.ZSTD
        )
        self._writer.start(profile="ros2", library="rapsam-edge")
        self._channels: dict[str, tuple[int, Any]] = {}
        self._schemas: dict[str, int] = {}
        self._fps = FpsMeter()
        #: frames written, and messages per topic
        self.frames = 0
        self.counts: dict[str, int] = {}
        self._labels_written = False
        track(self)

    @classmethod
    def for_segmenter(cls, path: str | Path, seg: Any, **kwargs: Any) -> Recorder:
        """``Recorder(path, OutputInfo.of(seg), **kwargs)``."""
        return cls(path, OutputInfo.of(seg), **kwargs)

    # ------------------------------------------------------------------------ writing
    def _channel(self, topic: str) -> tuple[int, Any]:
        if topic not in self._channels:
            spec = TOPICS[topic]
            if spec.type not in self._schemas:
                data = msgdefs.definition(spec.type).encode()
                self._schemas[spec.type] = self._writer.register_schema(
                    name=spec.type, encoding="ros2msg", data=data
                )
            encoder = self._serialize(spec.type, msgdefs.definition(spec.type))[spec.type]
            channel = self._writer.register_channel(
                topic=topic_name(topic, self.namespace),
                message_encoding="cdr",
                schema_id=self._schemas[spec.type],
                metadata={"offered_qos_profiles": qos_yaml(QOS[spec.qos])},
            )
            self._channels[topic] = (channel, encoder)
        return self._channels[topic]

    def write_message(self, topic: str, msg: Msg) -> None:
        """Write one message (a dict of ``messages``) on a ``TOPICS`` topic at its header
        stamp.

        Raises:
          InputError: an unknown topic, or a message that is not of the topic's type."""
        if self._file is None:
            raise OutputError(f"the MCAP recording {str(self.path)!r} is closed")
        if topic not in TOPICS:
            raise InputError(f"unknown topic {topic!r} (have {sorted(TOPICS)})")
        check_message(TOPICS[topic].type, msg)
        stamp = check_header(msg["header"])["stamp"]
        t_ns = stamp["sec"] * 1_000_000_000 + stamp["nanosec"]
        channel, encoder = self._channel(topic)
        data = encoder(msg)
        self._writer.add_message(
            channel, log_time=t_ns, publish_time=t_ns, data=bytes(data), sequence=self.frames
        )
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def write(
        self,
        frame: np.ndarray,
        result: PanopticResult | TrackResult | PromptTrackResult,
        *,
        stamp_ns: int | None = None,
        header: Mapping[str, Any] | None = None,
        prompts: PromptTrackResult | None = None,
        fps: float | None = None,
    ) -> dict[str, Msg]:
        """Write every output of one frame (``outputs.frame_messages``).

        Arguments:
          frame, result: a pair from ``Segmenter.stream`` (frame in ``info.color_order``).
            A ``PromptTrackResult`` (``task="prompt"``) writes the prompt topics only:
            ``prompts/masks``, ``debug/overlay``, ``diagnostics`` (no ``label_info``).
          stamp_ns: the frame's time in ns (default: now); ignored when ``header`` is given.
          header: the input image's ``std_msgs/Header`` (stamp and frame id are copied).
          prompts: the prompt tracker's result on this frame (``prompts/masks``); default:
            ``result.prompts`` (a stream given prompts).
          fps: the rate to report (default: measured between ``write`` calls; none on the
            first frame, whose ``diagnostics`` then has no "fps" value).
        Returns:
          the messages written, by topic.
        Raises:
          InputError: a frame / result / header / fps that does not fit, a result that is not
            a stream result (nothing is written for this frame). OutputError: the recording
            is closed.
        """
        if self._file is None:
            raise OutputError(f"the MCAP recording {str(self.path)!r} is closed")
        scene, _ = split_result(result, prompts)
        check_fps(fps)  # before the meter counts this frame
        if header is None:
            header = make_header(time.time_ns() if stamp_ns is None else stamp_ns, self.frame_id)
        measured = self._fps.tick()
        msgs = frame_messages(
            header,
            frame,
            result,
            self.info,
            fps=measured if fps is None else fps,
            overlay=self.overlay,
            prompts=prompts,
        )
        if scene is not None and not self._labels_written:
            msgs = {"label_info": label_info_message(header, self.info), **msgs}
            self._labels_written = True
        for topic, msg in msgs.items():
            self.write_message(topic, msg)
        self.frames += 1
        self._file.flush()  # chunks completed so far reach the OS (a killed process keeps them)
        return msgs

    # ------------------------------------------------------------------------ closing
    def close(self) -> Path:
        """Finish the file (summary, index), check it and move it to ``path``.

        Returns:
          ``path``.
        Raises:
          OutputError: the file cannot be finished or moved (the partial file is removed).
          OutputExistsError: ``path`` appeared meanwhile and ``overwrite`` is False.
        """
        untrack(self)
        if self._file is None:
            return self.path
        try:
            self._writer.finish()
            self._file.close()
            self._file = None
            if self.path.exists() and not self.overwrite:
                raise OutputExistsError(f"the MCAP recording {str(self.path)!r} appeared meanwhile")
            os.replace(self._tmp, self.path)
        except OSError as e:
            self.abort()
            if isinstance(e, OutputError):
                raise
            raise OutputError(f"cannot write the MCAP recording {str(self.path)!r}: {e}") from e
        return check_written(self.path, "the MCAP recording")

    def abort(self) -> None:
        """Drop the recording: close the file and remove it (nothing appears at ``path``)."""
        untrack(self)
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, OSError) and not isinstance(exc, OutputExistsError):
            self.abort()  # the disk or the file failed: nothing trustworthy to keep
        else:
            self.close()  # the frames written so far make a valid recording

    def _finish_unclosed(self, why: str) -> None:
        if getattr(self, "_file", None) is not None:
            finish_unclosed(self, f"the MCAP recording {str(self.path)!r}", why)

    def __del__(self) -> None:
        self._finish_unclosed("it was garbage-collected")
