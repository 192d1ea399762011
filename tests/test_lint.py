"""The code base stays `ruff check` clean and `ruff format` formatted (rules in
pyproject.toml), with no formatter pragmas fighting the formatter; the torch-free runtime
(the folders of [tool.mypy] files) type-checks with mypy, and csrc/ is formatted by
clang-format (.clang-format)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PRAGMA = re.compile(r"#\s*fmt:\s*(skip|off|on)\b")


def _ruff() -> str:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed (it is in the `test` extra)")
    return ruff


def test_ruff_check_is_clean():
    proc = subprocess.run(
        [_ruff(), "check", "--no-cache", str(REPO)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_is_clean():
    proc = subprocess.run(
        [_ruff(), "format", "--check", "--no-cache", str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, "run `ruff format .`:\n" + proc.stdout + proc.stderr


def test_no_formatter_pragmas():
    hits = [
        f"{p.relative_to(REPO)}:{i}"
        for p in REPO.rglob("*.py")
        if not any(part in {"build", ".git", ".venv", "venv"} for part in p.parts)
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if PRAGMA.search(line)
    ]
    assert not hits, f"formatter pragmas: {hits}"


def test_mypy_is_clean_on_the_torch_free_runtime():
    """runtime/, ops/, contract/, apps/ and profile/ (pyproject.toml [tool.mypy] files)."""
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (it is in the `test` extra)")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _cpp_sources() -> list[Path]:
    return sorted(p for p in (REPO / "csrc").rglob("*") if p.suffix in {".cpp", ".hpp", ".h"})


def test_csrc_is_clang_formatted():
    clang_format = shutil.which("clang-format")
    if clang_format is None:
        pytest.skip("clang-format is not installed (it is in the `test` extra)")
    sources = _cpp_sources()
    assert len(sources) > 10, sources  # the glob still finds the C++ sources
    proc = subprocess.run(
        [clang_format, "--dry-run", "--Werror", *map(str, sources)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, "run `clang-format -i` on csrc/:\n" + proc.stderr[-4000:]
