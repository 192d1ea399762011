"""Layers: the runtime half (``runtime``, ``ops``, ``apps``, the contract and the top-level
runtime modules) never imports the training half (``model``, ``data``, ``train``,
``deploy``, ``eval``), not even lazily inside a function. Every module is parsed, so an
import in a function body that no test happens to execute is caught too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rapsam_edge"
RUNTIME = ("runtime", "ops", "apps", "contract", "profile")
RUNTIME_FILES = ("__init__.py", "bundle.py", "assets.py", "errors.py", "cli.py")
TRAINING = ("model", "data", "train", "deploy", "eval")


def _modules() -> list[Path]:
    files = [p for layer in RUNTIME for p in sorted((PKG / layer).rglob("*.py"))]
    return files + [PKG / f for f in RUNTIME_FILES]


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in ``path``."""
    rel = path.relative_to(PKG.parent).with_suffix("")
    package = list(rel.parts[:-1])  # the package a relative import starts from
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names = [mod] if node.module else [f"{mod}.{a.name}" for a in node.names]
            if node.module:  # `from .. import data` imports a training package too
                names += [f"{mod}.{a.name}" for a in node.names]
            out += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            args = [a.value for a in node.args if isinstance(a, ast.Constant)]
            out += [(node.lineno, str(a)) for a in args[:1]]
    return out


def _violations(path: Path) -> list[str]:
    bad = tuple(f"rapsam_edge.{t}" for t in TRAINING)
    return [
        f"{path.relative_to(PKG.parent)}:{line} imports {name}"
        for line, name in _imported(path)
        if name in bad or name.startswith(tuple(b + "." for b in bad))
    ]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PKG)))
def test_runtime_never_imports_the_training_half(path: Path):
    assert not _violations(path)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path):
    fake = PKG / "runtime" / "_layer_probe.py"
    try:
        fake.write_text(
            "def f():\n    from ..data import classes\n    import rapsam_edge.model.io\n"
            "def g():\n    from .. import deploy\n"
        )
        found = _violations(fake)
    finally:
        fake.unlink()
    assert len([v for v in found if "data" in v]) >= 1
    assert any("rapsam_edge.model.io" in v for v in found)
    assert any("rapsam_edge.deploy" in v for v in found)


def test_the_contract_imports_only_errors():
    for path in sorted((PKG / "contract").glob("*.py")):
        for _, name in _imported(path):
            if name.startswith("rapsam_edge."):
                assert name.startswith(("rapsam_edge.contract", "rapsam_edge.errors")), (path, name)
