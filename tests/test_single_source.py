"""Every fact Python and C++ share is written once, in rapsam_edge/contract/contract.json.

The tree (rapsam_edge/, csrc/, export/, tools/, examples/, the CMake files) is searched for
the ways a copy would creep back in: a default or constant of a contract name set to a
number (a function default, a dataclass field, an assignment, a C++ member / constexpr /
pybind11 default), an environment variable name as a string of its own, a graph's name as a
string (Python: ``ENCODER``, ...; C++: ``contract::graphs::<graph>::name``), a shipped
bundle's name as a string, a bundle directory in CMake. The numeric facts searched for are
every number of contract.json, found by walking it (a ``{"max": N}`` section ``s`` is
``max_s`` / ``MAX_S`` / ``kMaxS``), so a number added to the contract is searched for
without editing this test.
Docstrings and comments may mention the values; uses by name (``SCORE_THRESHOLD``,
``contract::kScoreThreshold``) are what the rest of the code writes.

Also: the thread-count rule is the same in Python and in the compiled core (the same strings
give the same count or the same error), and the package version is written once.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from rapsam_edge.contract import shared
from rapsam_edge.contract.threads import parse_threads
from rapsam_edge.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parents[1]
CONTRACT = json.loads(shared.CONTRACT_FILE.read_text())
HOME = REPO / "rapsam_edge" / "contract" / "shared.py"  # the one Python reader of the file
SEARCHED = ("rapsam_edge", "csrc", "export", "tools", "examples")


def _numeric_keys(data: dict) -> tuple[str, ...]:
    """The name of every number in the contract: a key of a section of numbers
    (``postprocess.score_threshold`` -> ``score_threshold``), or ``max_<section>`` for a
    section's ``max`` (``threads.max`` -> ``max_threads``, ``prompts.max`` ->
    ``max_prompts``). Graph specs (shapes) are not facts of this kind."""
    keys = []
    for section, value in data.items():
        if not isinstance(value, dict) or section == "graphs":
            continue
        for key, leaf in value.items():
            if isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
                keys.append(f"max_{section}" if key == "max" else key)
    return tuple(keys)


#: contract key -> the spellings of a definition (snake, UPPER, C++ kCamel)
NUMERIC_KEYS = _numeric_keys(CONTRACT)
ENV_NAMES = tuple(CONTRACT["env"].values())
GRAPH_NAMES = tuple(CONTRACT["graphs"])
BUNDLES = (*CONTRACT["bundles"]["shipped"], CONTRACT["bundles"]["default"])


def _camel(key: str) -> str:
    return "k" + "".join(part.capitalize() for part in key.split("_"))


def _is_contract_name(name: str) -> bool:
    bare = name.rsplit(".", 1)[-1].lstrip("_")
    return bare.lower() in NUMERIC_KEYS or bare in {_camel(k) for k in NUMERIC_KEYS}


def _files(*suffixes: str) -> list[Path]:
    """Source files of the searched folders; tests (csrc/tests) set their own values."""
    out = []
    for top in SEARCHED:
        out += [p for p in (REPO / top).rglob("*") if p.suffix in suffixes and p.is_file()]
    return sorted(p for p in out if REPO / "csrc" / "tests" not in p.parents)


def _number(node: ast.AST | None) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    )


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _target_name(target: ast.AST) -> str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):
        return target.attr
    return ""


def python_findings(path: Path) -> list[str]:
    """Contract facts defined in one Python file (or stub)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = _docstrings(tree)
    found = []

    def add(node: ast.AST, what: str) -> None:
        found.append(f"{path.relative_to(REPO)}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            params = [*a.posonlyargs, *a.args]
            pairs = list(zip(params[len(params) - len(a.defaults) :], a.defaults))
            pairs += [(p, d) for p, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            for param, default in pairs:
                if _is_contract_name(param.arg) and _number(default):
                    add(default, f"default {param.arg} = {ast.unparse(default)}")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                name = _target_name(target)
                if name and _is_contract_name(name) and _number(node.value):
                    add(node, f"{name} = {ast.unparse(node.value)}")  # type: ignore[arg-type]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) in docs:
                continue
            if node.value in ENV_NAMES:
                add(node, f"environment variable name {node.value!r} written out")
            if node.value in BUNDLES:
                add(node, f"shipped bundle name {node.value!r} written out")
            if node.value in GRAPH_NAMES:
                add(node, f"graph name {node.value!r} written out (use the contract's name)")
    return found


_CPP_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_CPP_RAW_STRING = re.compile(r'R"(\w*)\(.*?\)\1"', re.DOTALL)


def cpp_findings(path: Path) -> list[str]:
    """Contract facts defined in one C++ file (comments and raw docstrings stripped)."""
    text = _CPP_RAW_STRING.sub('""', _CPP_COMMENT.sub("", path.read_text(encoding="utf-8")))
    names = "|".join(sorted({*NUMERIC_KEYS, *(_camel(k) for k in NUMERIC_KEYS)}))
    number = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?[fF]?"
    found = []
    where = str(path.relative_to(REPO))
    for m in re.finditer(rf'\b({names})(?:"_a)?\s*=\s*({number})(?![\w.])', text):
        found.append(f"{where}: {m.group(1)} = {m.group(2)}")
    for name in (*ENV_NAMES, *BUNDLES, *GRAPH_NAMES):
        if f'"{name}"' in text:
            found.append(f"{where}: {name!r} written out")
    return found


def test_the_contract_file_is_the_only_home_of_the_shared_facts():
    findings = []
    for path in _files(".py", ".pyi"):
        if path != HOME:
            findings += python_findings(path)
    for path in _files(".cpp", ".hpp", ".h", ".cc"):
        findings += cpp_findings(path)
    assert findings == []


def test_cmake_installs_the_contract_list_of_bundles():
    for cmake in (REPO / "CMakeLists.txt", *sorted((REPO / "cmake").glob("*.cmake"))):
        text = _CPP_COMMENT.sub("", cmake.read_text())
        for bundle in BUNDLES:
            assert bundle not in text, f"{cmake.name} names the bundle {bundle}"
    assert "RAPSAM_SHIPPED_BUNDLES" in (REPO / "CMakeLists.txt").read_text()


def test_every_number_of_the_contract_is_searched_for():
    """The list of names comes from the file: a number added there (``prompts.max``, once
    a literal 256 in runtime/options.py and csrc/runtime/segmenter.hpp) is searched for."""
    assert {"score_threshold", "max_missed", "max_threads", "max_prompts"} <= set(NUMERIC_KEYS)
    assert _numeric_keys({"widgets": {"max": 3, "name": "x"}, "graphs": {"g": {"n": 1}}}) == (
        "max_widgets",
    )


def test_the_search_finds_what_it_looks_for():
    """The checks above are not vacuous: each kind of copy is caught (one graph's name as a
    string too: a dict key, a comparison, an index; not only the whole list)."""
    py = REPO / "rapsam_edge" / "_probe_single_source.py"
    cpp = REPO / "csrc" / "_probe_single_source.hpp"
    py_src = (
        "def f(x, score_threshold=0.8, *, max_missed: int = 10):\n    pass\n"
        "SATURATED_LOGIT = 1e4\n"
        "class C:\n    momentum: float = 0.8\n"
        f"VAR = {ENV_NAMES[0]!r}\n"
        f"NAMES = {GRAPH_NAMES!r}\n"
        f"B = {BUNDLES[0]!r}\n"
        "MAX_PROMPTS = 256\n"
        f"def g(graphs, max_prompts=256):\n    return graphs[{GRAPH_NAMES[0]!r}]\n"
        f"W = {{{GRAPH_NAMES[1]!r}: 1}}\n"
    )
    cpp_src = (
        "double overlap_threshold = 0.8;\nconstexpr float kSaturatedLogit = 1e4f;\n"
        'm.def("f", &f, "birth_score"_a = 0.5);\nconstexpr int kMaxThreads = 256;\n'
        f'const char* v = "{ENV_NAMES[1]}";\n'
        "for (auto g : {" + ", ".join(f'"{g}"' for g in GRAPH_NAMES) + "}) {}\n"
        "int max_prompts = 256;\n"
        f'if (name == "{GRAPH_NAMES[2]}") {{}}\n'
    )
    try:
        py.write_text(py_src)
        cpp.write_text(cpp_src)
        # the tuple of names counts once per name; the graph names alone: 3 + 1 + 1
        assert len(python_findings(py)) == 13, python_findings(py)
        # the braced list counts once per name (3), the comparison once more
        assert len(cpp_findings(cpp)) == 9, cpp_findings(cpp)
    finally:
        py.unlink(missing_ok=True)
        cpp.unlink(missing_ok=True)


# ---------------------------------------------------------------- one thread-count rule
THREAD_VALUES = [
    "",
    " ",
    "\t\n",
    "1",
    "4",
    " 8 ",
    "\t16\r\n",
    "256",
    "0256",
    "0",
    "257",
    "9999",
    "00001",
    "-1",
    "+4",
    "4_0",
    "1e2",
    "3.0",
    "many",
    "٣",  # an Arabic-Indic digit: int() would take it, the rule does not
    "\u00a04",  # a no-break space is not one of the stripped characters
    "4'",
    "a\"b'",
    "\x01",
    "4\x00",  # an embedded NUL: not the end of the value (a C string would stop there)
    "\x004",
]


def _python_answer(raw: str) -> object:
    try:
        return parse_threads(raw)
    except InputError as e:  # ConfigError is one: the exact type is compared
        return (type(e).__name__, str(e))


def _core_answer(core, raw: str) -> object:
    try:
        return core.parse_num_threads(raw)
    except InputError as e:
        return (type(e).__name__, str(e))


@pytest.mark.parametrize("raw", THREAD_VALUES)
def test_python_and_the_core_read_the_threads_variable_alike(raw):
    """Same count, or the same error type (ConfigError: a setting) with the same message. The
    message quotes the value as Python's repr() does; for non-ASCII text (which is always an
    error) the core copies the bytes where repr() may escape a character, so there only the
    outcome is compared."""
    from rapsam_edge import _core  # a missing core must fail this test, not skip it

    got, want = _core_answer(_core, raw), _python_answer(raw)
    if raw.isascii():
        assert got == want
    else:
        assert isinstance(got, tuple) and isinstance(want, tuple) and got[0] == want[0]
    assert not isinstance(want, tuple) or want[0] == "ConfigError"


def test_thread_rule_examples():
    assert parse_threads(None) is None and parse_threads(" \t") is None
    assert parse_threads(" 8\n") == 8 and parse_threads(str(shared.MAX_THREADS)) == 256
    for bad in ("0", "257", "+4", "٣", "many"):
        with pytest.raises(ConfigError, match=r"must be an integer in \[1, 256\]"):
            parse_threads(bad)


# ---------------------------------------------------------------- one version
def test_the_version_is_written_once():
    import rapsam_edge
    from rapsam_edge import ops

    pyproject = (REPO / "pyproject.toml").read_text()
    written = re.findall(r'^version *= *"([^"]+)"', pyproject, re.MULTILINE)
    assert written == [rapsam_edge.__version__]
    assert ops.info()["package_version"] == rapsam_edge.__version__
    for path in _files(".py"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"^__version__\s*=\s*['\"]", text, re.MULTILINE), path
