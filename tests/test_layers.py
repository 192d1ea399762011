"""Dependencies point one way, for the whole package.

Every module of ``rapsam_edge`` is parsed (imports inside functions included, relative imports
resolved), so an import that no test happens to execute is caught too. The checks:

(a) no module imports a module of a higher layer (``LAYERS``); same-layer imports are fine;
(b) no import circle between modules (strongly connected components of the import graph);
(c) the runtime side never imports the training side, nor torch;
(d) ``model/`` and ``eval/`` never import ``deploy/``;
and the runtime commands (``RUNTIME_VERBS``, extra None in ``cli.COMMANDS``) reach only
runtime-side modules, however deep the chain.

``python tests/test_layers.py [PACKAGE_DIR]`` prints the house: folders, circles, arrows up.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "rapsam_edge"

#: top-level part of ``rapsam_edge`` (package or module) -> layer; a module may import its own
#: layer and those below. ``_core`` is the compiled module, ``__init__`` the package itself.
LAYERS: dict[str, int] = {
    "errors": 0,
    "_core": 0,
    "contract": 0,
    "ops": 1,
    "bundle": 1,
    "assets": 1,
    "runtime": 2,
    "apps": 3,
    "profile": 3,
    "ros": 3,
    "data": 4,
    "model": 4,
    "train": 5,
    "eval": 5,
    "deploy": 6,
    "commands": 7,
    "cli": 8,
    "__init__": 8,
}
#: what may run without torch (the torch-free wheel)
RUNTIME_SIDE = frozenset(
    ("errors", "_core", "contract", "ops", "bundle", "assets", "runtime", "apps", "profile", "ros")
)
TRAINING_SIDE = frozenset(("data", "model", "train", "eval", "deploy"))
#: verbs that must run from the torch-free wheel (``cli.COMMANDS`` extra None)
RUNTIME_VERBS = ("demo", "run", "info", "profile")
TORCH = ("torch", "torchvision")


# ------------------------------------------------------------------------------ the graph
def module_name(path: Path, root: Path = PKG) -> str:
    """``rapsam_edge/runtime/segmenter.py`` -> ``rapsam_edge.runtime.segmenter``; a package's
    ``__init__.py`` -> the package's name."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, root: Path) -> bool:
    """Whether ``name`` (``rapsam_edge.x.y``) is a module or package of the tree at ``root``
    (the compiled ``_core`` counts)."""
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    base = root / rel
    if name == root.name or (base / "__init__.py").is_file() or base.with_suffix(".py").is_file():
        return True
    return name == f"{root.name}._core"


def imports(path: Path, root: Path = PKG) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``: module-level and inside
    functions, relative ones resolved; ``from P import x`` counts as ``P.x`` where that is a
    module (``from .. import _core`` is the compiled module), else as ``P`` itself;
    ``importlib.import_module("literal")`` counts too."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                target = sub if mod.startswith(root.name) and _is_module(sub, root) else mod
                out.append((node.lineno, target))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
            args = [a.value for a in node.args[:1] if isinstance(a, ast.Constant)]
            out += [(node.lineno, str(a)) for a in args if not str(a).startswith(".")]
    return out


def graph(root: Path = PKG) -> dict[str, dict[str, int]]:
    """module -> {imported module of the package: first line}, for every module under
    ``root`` (imports of outside packages left out)."""
    out: dict[str, dict[str, int]] = {}
    for path in sorted(root.rglob("*.py")):
        edges: dict[str, int] = {}
        for line, target in imports(path, root):
            if target == root.name or target.startswith(root.name + "."):
                edges.setdefault(target, line)
        out[module_name(path, root)] = edges
    return out


def part(module: str) -> str:
    """The ``LAYERS`` key of a module: its top-level part (``__init__`` for the package)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def circles(g: dict[str, dict[str, int]]) -> list[list[str]]:
    """The import circles: strongly connected components of more than one module (or a
    module importing itself), Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, {}):
            if w not in g:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in g[v]:
                found.append(sorted(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(g):
        if v not in index:
            visit(v)
    return sorted(found)


def arrows_up(g: dict[str, dict[str, int]]) -> list[str]:
    """``importer:line -> imported`` for every import of a higher layer."""
    return [
        f"{src}:{line} -> {dst}"
        for src, edges in g.items()
        for dst, line in edges.items()
        if LAYERS[part(dst)] > LAYERS[part(src)]
    ]


def reachable(g: dict[str, dict[str, int]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        v = todo.pop()
        if v not in seen:
            seen.add(v)
            todo += [w for w in g.get(v, {}) if w in g]
    return seen


GRAPH = graph()


# ------------------------------------------------------------------------------ the checks
def test_every_part_of_the_package_has_a_layer():
    assert {part(m) for m in GRAPH} <= set(LAYERS), sorted({part(m) for m in GRAPH} - set(LAYERS))
    assert RUNTIME_SIDE | TRAINING_SIDE < set(LAYERS)
    assert max(LAYERS[p] for p in RUNTIME_SIDE) < min(LAYERS[p] for p in TRAINING_SIDE)


def test_no_import_runs_up_a_layer():
    assert arrows_up(GRAPH) == []


def test_no_import_circle():
    assert circles(GRAPH) == []


def _offending(modules: Iterable[str], bad: Iterable[str]) -> list[str]:
    bad = tuple(bad)
    return [
        f"{src}:{line} -> {dst}"
        for src in modules
        for dst, line in GRAPH[src].items()
        if part(dst) in bad
    ]


def test_the_runtime_side_never_imports_the_training_side_nor_torch():
    runtime = [m for m in GRAPH if part(m) in RUNTIME_SIDE]
    assert len(runtime) > 30  # the walk found the runtime modules
    assert _offending(runtime, TRAINING_SIDE) == []
    for path in sorted(PKG.rglob("*.py")):
        if part(module_name(path)) in RUNTIME_SIDE:
            torch = [(line, n) for line, n in imports(path) if n.split(".")[0] in TORCH]
            assert torch == [], (path, torch)


def test_model_and_eval_never_import_deploy():
    assert _offending([m for m in GRAPH if part(m) in ("model", "eval")], ["deploy"]) == []


def test_no_library_module_imports_the_command_line():
    """Library code is called by commands, never the other way round (no ``cli.main(argv)``
    inside the library)."""
    library = [m for m in GRAPH if part(m) not in ("commands", "cli", "__init__")]
    assert _offending(library, ["commands", "cli"]) == []


@pytest.mark.parametrize("verb", RUNTIME_VERBS)
def test_runtime_commands_reach_only_the_runtime_side(verb):
    from rapsam_edge.cli import COMMANDS

    command = COMMANDS[verb]
    assert command.extra is None and command.module == f"rapsam_edge.commands.{verb}"
    reached = reachable(GRAPH, command.module)
    # the package itself (and ``commands/__init__``) is imported implicitly by every module
    # anyway; what it imports is walked like the rest
    allowed = {"rapsam_edge", "rapsam_edge.commands"}
    outside = sorted(m for m in reached if part(m) not in RUNTIME_SIDE and m not in allowed)
    assert outside == [command.module], outside


def test_every_verb_is_one_module_of_the_commands_package():
    from rapsam_edge.cli import COMMANDS

    for verb, command in COMMANDS.items():
        assert command.module == "rapsam_edge.commands." + verb.replace("-", "_"), verb
    modules = {m for m in GRAPH if part(m) == "commands" and m != "rapsam_edge.commands"}
    assert modules == {c.module for c in COMMANDS.values()}


def test_the_contract_imports_only_errors():
    for path in sorted((PKG / "contract").glob("*.py")):
        for _, name in imports(path):
            if name.startswith("rapsam_edge."):
                assert name.startswith(("rapsam_edge.contract", "rapsam_edge.errors")), (path, name)


def test_the_checker_sees_lazy_relative_and_compiled_imports(tmp_path: Path):
    root = tmp_path / "rapsam_edge"
    for sub in ("runtime", "data", "model", "ops"):
        (root / sub).mkdir(parents=True)
        (root / sub / "__init__.py").write_text("")
    (root / "__init__.py").write_text("from .runtime import probe\n")
    (root / "_core.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (root / "data" / "classes.py").write_text("")
    (root / "model" / "io.py").write_text("import rapsam_edge.runtime.probe\n")
    (root / "ops" / "__init__.py").write_text("from .. import _core\n")
    (root / "runtime" / "probe.py").write_text(
        "def f():\n    from ..data import classes\n    import rapsam_edge.model.io\n"
        "def g():\n    from .. import model\n    from .. import __version__\n"
    )
    g = graph(root)
    assert g["rapsam_edge.runtime.probe"].keys() == {
        "rapsam_edge.data.classes",
        "rapsam_edge.model.io",
        "rapsam_edge.model",
        "rapsam_edge",  # `from .. import __version__`: the package itself
    }
    assert g["rapsam_edge.ops"].keys() == {"rapsam_edge._core"}
    ups = arrows_up(g)
    assert any("probe:2 -> rapsam_edge.data.classes" in a for a in ups)
    assert "rapsam_edge.runtime.probe:6 -> rapsam_edge" in ups
    assert circles(g) == [["rapsam_edge", "rapsam_edge.model.io", "rapsam_edge.runtime.probe"]]


# ------------------------------------------------------------------------------ the house
def summary(root: Path = PKG) -> str:
    g = graph(root)
    folders = sorted({part(m) for m in g if (root / part(m)).is_dir()})
    lines = [f"{root}: {len(g)} modules in {len(folders)} folders: {', '.join(folders)}"]
    found = circles(g)
    lines.append(f"circles: {len(found)}")
    lines += [f"  {' <-> '.join(c)}" for c in found]
    ups = arrows_up(g)
    lines.append(f"arrows up a layer: {len(ups)}")
    lines += [f"  {a}" for a in ups]
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else PKG))
