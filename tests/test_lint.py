"""The code base stays `ruff check` clean and `ruff format` formatted (rules in
pyproject.toml), with no formatter pragmas fighting the formatter."""

from __future__ import annotations

import re
import shutil
import subprocess
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
