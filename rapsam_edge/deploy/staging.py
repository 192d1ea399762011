"""Writing a bundle atomically: every bundle writer (``export_bundle``, ``quantize_bundle``,
``export_with_recipe`` through them) builds the bundle in a staging folder beside its
output directory and moves it into place only when it is complete (and, for a derived
bundle, has passed its gate).

* ``staged_bundle(out, replace=...)`` is the one way to do it: it refuses an ``out`` it may
  not replace before any work, yields the staging folder, and on success moves it onto
  ``out`` with a rename on the same file system (an existing ``out`` is swapped with
  ``renameat2(RENAME_EXCHANGE)`` where Linux offers it, so no reader ever sees a missing or
  half-written ``out``). On any exception, ``KeyboardInterrupt`` and ``SystemExit`` included,
  the staging folder is removed and ``out`` is left exactly as it was.
* A staging folder is named ``.<out name>`` + ``contract.PARTIAL_BUNDLE_MARK`` + ``<pid>-<random>``.
  One left by a killed process (``kill -9``, power loss) is never taken for a bundle:
  ``assets.resolve_bundle`` refuses any directory whose name carries the mark, and the next
  run that writes the same ``out`` removes the ones whose process is gone.
* ``load_staged`` validates a staged bundle (manifest fields, sha256 of every file) without
  the name check, for the writer itself and its gate.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import logging
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..bundle import Bundle, parse_manifest, read_manifest, verify_files
from ..contract.manifest import MANIFEST_NAME
from ..contract.shared import PARTIAL_BUNDLE_MARK
from ..errors import OutputExistsError
from .provenance import check_portable

__all__ = [
    "PARTIAL_BUNDLE_MARK",
    "check_target",
    "clean_stale",
    "load_staged",
    "staged_bundle",
    "write_manifest",
]

log = logging.getLogger(__name__)


def _unlisted_files(out: Path) -> list[str]:
    """Files in ``out`` that are neither its manifest nor listed in it (all of them when the
    manifest cannot be read)."""
    try:
        listed = set(json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))["files"])
    except (OSError, ValueError, KeyError, TypeError):
        listed = set()
    return sorted(
        rel
        for p in out.rglob("*")
        if (p.is_file() or p.is_symlink())
        and (rel := p.relative_to(out).as_posix()) != MANIFEST_NAME
        and (rel not in listed or p.is_symlink())
    )


def check_target(out: Path, *, replace: bool, flag: str = "--out") -> None:
    """Refuse an output directory the writer may not replace, before any work: a file, a
    non-empty directory without ``replace``, or (even with ``replace``) a directory that is
    not a previous bundle (no manifest, or files its manifest does not list).

    Raises:
      OutputExistsError: the message names what is in the way.
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputExistsError(
            f"{flag} {out} exists and is not a directory", hint=f"choose another {flag}"
        )
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / MANIFEST_NAME).is_file():
        raise OutputExistsError(
            f"{flag} {out} is not empty and not a bundle; refusing to write into it",
            hint=f"choose another {flag}, or empty the directory yourself",
        )
    if not replace:
        raise OutputExistsError(
            f"{flag} {out} holds a bundle", hint=f"pass --overwrite or another {flag}"
        )
    unlisted = _unlisted_files(out)
    if unlisted:
        raise OutputExistsError(
            f"{flag} {out} holds files its manifest does not list ({unlisted[:5]}): it is not "
            "a bundle the writer made; refusing to replace it",
            hint=f"choose another {flag}, or remove those files yourself",
        )


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there: assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def clean_stale(out: Path) -> list[Path]:
    """Remove the staging folders of ``out`` left by writers that are gone (their process
    id, in the folder's name, no longer runs); returns them."""
    prefix = f".{out.name}{PARTIAL_BUNDLE_MARK}"
    removed = []
    if not out.parent.is_dir():
        return removed
    for p in out.parent.iterdir():
        pid = p.name[len(prefix) :].split("-", 1)[0]
        if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink() and pid.isdigit():
            if not _pid_alive(int(pid)):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
                log.info("removed %s, left by an interrupted writer (process %s)", p, pid)
    return removed


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directory entries atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False
    where the system or the file system does not offer it."""
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _move_into_place(stage: Path, out: Path) -> None:
    """``stage`` becomes ``out``; an existing ``out`` (a previous bundle, checked) is
    swapped out and removed under a staging name."""
    if not out.exists():
        os.rename(stage, out)
        return
    if not _exchange(stage, out):  # two renames: ``out`` is absent between them
        old = out.parent / f".{out.name}{PARTIAL_BUNDLE_MARK}{os.getpid()}-old"
        os.rename(out, old)
        os.rename(stage, out)
        stage = old
    shutil.rmtree(stage, ignore_errors=True)  # the previous bundle, now under the staging name


def _terminated(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds through staged_bundle, which removes its folder


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM raises SystemExit (exit status 143) instead of ending
    the process on the spot, so that the staging folder is removed; only in the main thread
    and only where no handler of the application's is installed."""
    main = threading.current_thread() is threading.main_thread()
    if not main or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def staged_bundle(out: str | Path, *, replace: bool, flag: str = "--out") -> Iterator[Path]:
    """Build a bundle for ``out`` in a staging folder beside it (yielded); move it onto
    ``out`` when the block ends normally. On any exception the folder is removed and ``out``
    is untouched.

    Arguments:
      replace: an existing bundle at ``out`` may be replaced (never another directory).
      flag: the option that named ``out``, for messages.
    Raises:
      OutputExistsError: ``out`` may not be replaced (checked before the block runs and
        again before the move).
    """
    out = Path(out)
    check_target(out, replace=replace, flag=flag)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(out)
    stage = out.parent / f".{out.name}{PARTIAL_BUNDLE_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with _sigterm_unwinds():
            stage.mkdir()
            yield stage
            check_target(out, replace=replace, flag=flag)  # nothing appeared there meanwhile
            _move_into_place(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` (a ``Manifest.to_dict()``) as ``root/manifest.json`` after
    checking that it records no path of this machine (``provenance.check_portable``)."""
    check_portable(manifest, "manifest")
    (root / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def load_staged(root: Path) -> Bundle:
    """A staged bundle, validated as ``load_bundle`` does (fields, sha256 of every file) but
    without refusing the staging folder's name."""
    bundle = parse_manifest(read_manifest(root / MANIFEST_NAME), root)
    verify_files(bundle)
    return bundle
