"""`rapsam-edge` command line: one table of sub-commands, each imported only when used (so
runtime commands never import torch, and every ``--help`` works without it).

Every verb is one module of ``rapsam_edge.commands`` (``make-data`` -> ``make_data``); it
exposes ``add_arguments(parser)`` and ``run(args) -> int`` and imports torch (if at all) inside
``run``. Errors the SDK raises on purpose (``RapsamEdgeError``), a missing optional dependency,
a bad argument and what a parser says of a bad file (OSError, ValueError, MemoryError,
RecursionError, zip / ONNX / OpenVINO / protobuf errors) print one line with what to do and
exit 2; any other exception is reported, in one line, as a bug (exit 1); Ctrl-C exits 130.
``--debug`` (anywhere on the line) prints the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import socket
import sys
import zipfile
from collections.abc import Sequence
from typing import NamedTuple

from .errors import RapsamEdgeError


class Command(NamedTuple):
    module: str  # rapsam_edge.commands.<verb>: implements add_arguments / run
    help: str
    extra: str | None  # the pip extra its run() needs beyond the runtime, if any


#: sub-command -> how it is implemented
COMMANDS: dict[str, Command] = {
    "demo": Command(
        "rapsam_edge.commands.demo",
        "the shipped model on the shipped clip: panoptic, prompts, tracking + timings",
        None,
    ),
    "run": Command(
        "rapsam_edge.commands.run", "run a bundle on an image, a video file or a camera", None
    ),
    "serve": Command(
        "rapsam_edge.commands.serve",
        "a browser view of click-to-track on a live source: click, drag or right-click objects",
        "serve",
    ),
    "profile": Command(
        "rapsam_edge.commands.profile",
        "on-device FPS profiler: per-stage latency, FPS, memory, environment, top operators",
        None,
    ),
    "benchmark": Command(
        "rapsam_edge.commands.benchmark",
        "FPS table: every shipped bundle and fresh variant x backend x precision usable here "
        "(fresh variants need torch)",
        None,
    ),
    "info": Command(
        "rapsam_edge.commands.info",
        "what a bundle holds, the ops core and the backends usable here",
        None,
    ),
    "make-data": Command(
        "rapsam_edge.commands.make_data",
        "generate a synthetic COCO-panoptic + YouTube-VIS dataset",
        None,
    ),
    "train": Command(
        "rapsam_edge.commands.train",
        "train (or fine-tune) a model; torchrun for several processes",
        "train",
    ),
    "distill": Command(
        "rapsam_edge.commands.distill",
        "train a student with a frozen teacher (dense-map KL, prompt masks, features)",
        "train",
    ),
    "pretrain": Command(
        "rapsam_edge.commands.pretrain",
        "pretrain a trunk on generated shape scenes (dense shape classification)",
        "train",
    ),
    "eval": Command(
        "rapsam_edge.commands.eval",
        "PQ, interactive mIoU / NoC and video AP of a model on a dataset",
        None,
    ),
    "quantize": Command(
        "rapsam_edge.commands.quantize",
        "FP32 bundle or weights -> INT8 / FP16 / BF16 bundle that passed the accuracy gate",
        "train",
    ),
    "variants": Command(
        "rapsam_edge.commands.variants", "parameters and GFLOPs of every model variant", "train"
    ),
    "convert": Command(
        "rapsam_edge.commands.convert", "official RAP-SAM checkpoint -> our weights", "train"
    ),
    "export": Command(
        "rapsam_edge.commands.export",
        "weights -> model bundle (ONNX + OpenVINO IR + manifest)",
        "train",
    ),
}

#: what to install for an extra (torch: a CPU build on a machine without CUDA)
EXTRA_HINT = {
    "train": "pip install 'rapsam-edge[train]' (a CPU-only torch: add "
    "--extra-index-url https://download.pytorch.org/whl/cpu, see README)",
    "serve": "pip install 'rapsam-edge[serve]' (aiohttp)",
}


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rapsam-edge",
        description="RAP-SAM edge SDK: train, export, run and profile segmentation models.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), help="sub-command")
    parser.add_argument("--debug", action="store_true", help="print tracebacks of errors")
    lines = [f"  {name:12s} {cmd.help}" for name, cmd in sorted(COMMANDS.items())]
    parser.epilog = "commands:\n" + "\n".join(lines)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _fail(message: str, hint: str | None) -> int:
    print(f"rapsam-edge: error: {message}", file=sys.stderr)
    if hint:
        print(f"rapsam-edge: hint: {hint}", file=sys.stderr)
    return 2


def _run(name: str, rest: list[str]) -> int:
    """Import verb ``name``'s module, parse ``rest`` and run it (errors go to ``main``)."""
    cmd = COMMANDS[name]
    # inside main's error handling: importing a command can load the ops, which check
    # RAPSAM_EDGE_THREADS / RAPSAM_EDGE_OPS (a ConfigError, one line + hint)
    module = importlib.import_module(cmd.module)
    parser = argparse.ArgumentParser(prog=f"rapsam-edge {name}", description=cmd.help)
    module.add_arguments(parser)
    if cmd.extra:
        parser.epilog = f"needs the '{cmd.extra}' extra: {EXTRA_HINT[cmd.extra]}"
    args = parser.parse_args(rest)
    return int(module.run(args) or 0)


#: exceptions a verb meets on bad input (a file that is not what it claims, a value a
#: parser refuses) rather than on a bug: one line + hint, exit 2
_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,  # numpy / json / struct parsing; UnicodeDecodeError is one
    EOFError,
    zipfile.BadZipFile,
)
#: libraries whose own exception types mean "this file / value is not what I can read"
_PARSER_MODULES = ("onnx", "onnxruntime", "openvino", "google.protobuf", "safetensors", "cv2")


def _worker_text(e: BaseException) -> str:
    """``str(e)``, less the worker traceback a torch DataLoader re-raise puts in it ("Caught
    X in DataLoader worker process 0. Original Traceback ...": the error's own line is last)."""
    text = str(e)
    if text.startswith("Caught ") and "\nOriginal Traceback" in text:
        last = [ln for ln in text.splitlines() if ln.strip()][-1]
        prefix = f"{type(e).__module__}.{type(e).__qualname__}: "
        for p in (prefix, f"{type(e).__qualname__}: "):
            if last.startswith(p):
                return last[len(p) :]
        return last
    return text


def _one_line(e: BaseException) -> str:
    text = " ".join(_worker_text(e).split()) or "(no message)"
    return text if len(text) <= 300 else text[:297] + "..."


_NET_DOWN = "check the host / URL and that the server is up and reachable from here"
#: errno -> hint for an OSError that names no file (a socket, a connection, the system)
_ERRNO_HINTS: dict[int, str] = {
    errno.EADDRINUSE: "another program (or another `rapsam-edge serve`) holds that port: give "
    "another --port, or --port 0 to let the system pick a free one",
    errno.EADDRNOTAVAIL: "that address is not one of this machine's: check --host",
    errno.EACCES: "the system refused it (binding a port below 1024 needs privileges: give a "
    "--port of 1024 or more, or 0)",
    errno.ECONNREFUSED: _NET_DOWN,
    errno.ECONNRESET: _NET_DOWN,
    errno.EHOSTUNREACH: _NET_DOWN,
    errno.ENETUNREACH: _NET_DOWN,
    errno.ETIMEDOUT: _NET_DOWN,
    errno.ENOSPC: "the disk is full: free space or write to another disk",
    errno.EMFILE: "too many open files: raise `ulimit -n` or close other programs",
    errno.ENFILE: "too many open files on this system: close other programs",
}
_ERRNO_HINTS[errno.EPERM] = _ERRNO_HINTS[errno.EACCES]
#: errno -> hint for an OSError about a file the user named
_PATH_HINTS: dict[int, str] = {
    errno.EACCES: "check the permissions of that path (and of the directories above it)",
    errno.EPERM: "check the permissions of that path (and of the directories above it)",
    errno.EROFS: "that file system is read-only: write somewhere else",
    errno.ENOSPC: "the disk is full: free space or write to another disk",
}


def _os_error(e: OSError) -> tuple[str, str]:
    """(message, hint) for an OSError: a path the user gave (the paths hint, or the
    permission / space one), a port already in use (say so: --port), a connection, or
    another system error (no path hint where no path is involved)."""
    text = e.strerror or _one_line(e)
    code = e.errno if isinstance(e.errno, int) else None
    if getattr(e, "filename", None):
        hint = _PATH_HINTS.get(code or 0, "check the paths given on the command line")
        return f"{text}: {e.filename}", hint
    if code == errno.EADDRINUSE:
        return f"the port is already in use ({text})", _ERRNO_HINTS[code]
    if isinstance(e, socket.gaierror):
        return f"cannot resolve the host name ({text})", _NET_DOWN
    if isinstance(e, TimeoutError) and code is None:
        return f"timed out ({text})", _NET_DOWN
    other = "an operating-system error that names no file: --debug shows where it came from"
    return text, _ERRNO_HINTS.get(code or 0, other)


def _classify(e: Exception, name: str) -> tuple[str, str | None, int]:
    """(message, hint, exit status) for an exception that escaped verb ``name``."""
    if isinstance(e, RapsamEdgeError):
        return _worker_text(e), e.hint, 2
    if isinstance(e, ModuleNotFoundError):
        extra = COMMANDS[name].extra or "train"
        return f"{e} (needed by `rapsam-edge {name}`)", EXTRA_HINT.get(extra), 2
    if isinstance(e, OSError):  # a path, a port or a connection: the hint fits which
        message, hint = _os_error(e)
        return message, hint, 2
    if isinstance(e, MemoryError):
        return (
            f"out of memory in `rapsam-edge {name}` ({type(e).__name__}: {_one_line(e)})",
            "give smaller inputs (image sizes, batch, --max-frames) or free memory",
            2,
        )
    if isinstance(e, RecursionError):
        return (
            f"an input nests too deeply to read ({_one_line(e)})",
            "check the files given on the command line (JSON / checkpoint structure)",
            2,
        )
    module = type(e).__module__ or ""
    if isinstance(e, _INPUT_ERRORS) or module.split(".")[0] in _PARSER_MODULES:
        return (
            f"cannot use an input of `rapsam-edge {name}` ({type(e).__name__}: {_one_line(e)})",
            "check the files and values given on the command line; --debug shows where it failed",
            2,
        )
    return (
        f"internal error (a bug in rapsam-edge {name}): {type(e).__name__}: {_one_line(e)}",
        "re-run with --debug and report the traceback",
        1,
    )


def _leave(status: int) -> int:
    """``status``, or, when capture threads were abandoned inside OpenCV (a stalled source),
    the process ends here with it (``os._exit`` after flushing): finalising the interpreter
    under such a thread can crash it (SIGSEGV after Ctrl-C on a stalled pipe)."""
    capture = sys.modules.get("rapsam_edge.runtime.capture")
    if capture is not None and capture.abandoned_captures():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rapsam-edge`` (``argv`` without the program name). Every failure is one line and
    a hint, exit 2 for bad input and 1 for a bug (named as one); ``--debug`` re-raises it;
    Ctrl-C exits 130 without a traceback. As the program (``argv`` None), it also ends the
    process itself when a stalled source left a capture thread inside OpenCV (``_leave``)."""
    if argv is None:
        return _leave(_main(sys.argv[1:]))
    return _main(list(argv))


def _main(argv: list[str]) -> int:
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] not in COMMANDS:
        _top_parser().parse_args(argv or ["--help"])
        return 2
    name = argv[0]
    try:
        return _run(name, argv[1:])
    except KeyboardInterrupt:
        if debug:
            raise
        print(file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        message, hint, status = _classify(e, name)
        _fail(message, hint)
        return status


if __name__ == "__main__":
    sys.exit(main())
