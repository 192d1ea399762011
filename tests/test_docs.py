"""The docs name only what exists. README.md, docs/*.md and models/*/PROVENANCE.md are read as
text (nothing is imported but the command modules of `rapsam_edge.cli.COMMANDS`, which are
torch-free, and `rapsam_edge.contract.shared` for the contract's values) and every name they
give is looked up:

(a) paths. Every whitespace-separated token of a code span (`...`), a code block (fenced or
    indented) or a link target that contains a "/" names a repository path, which must exist,
    when its first component is a top-level entry of the repository (`rapsam_edge/...`,
    `docs/...`, `models/...`) or "." / ".." (relative to the document, and inside the
    repository), or when it ends in a source-file suffix and its first component is a folder
    directly under `rapsam_edge/` (`runtime/base.py`, read as `rapsam_edge/runtime/base.py`).
    Any other token (`demo_out/`, `runs/x`, `data/synthetic`, `build/`, `/opt/...`) is an
    output or a user's path and is not checked, nor is the value of `--out` (what the
    command will write, `--out benchmarks/results/x`). A token with no "/" and a source-file suffix
    (.py .pyi .cpp .hpp .h .cmake) must be the name of some file of the repository.
    Placeholders are skipped: a token with `<`, `>`, `*`, `$`, `...` or `://`, or with a
    component written in capitals (`RUN`, `BUNDLE`, `F.png`) that no repository file or folder
    is named after (so `PROVENANCE.md` is checked, `DIR/coco` is not). `a/{b,c}.hpp` is
    expanded.
(b) modules. Every dotted name `rapsam_edge.x.y[.Name[.attr]]` anywhere in the text, and in
    code spans every `x.Name[.attr]` whose `x` is a module or folder directly under
    `rapsam_edge/` or a name `rapsam_edge/__init__.py` defines (`ops.use`, `contract.Manifest`,
    `Segmenter.settle`), must resolve: the longest prefix that is a module file
    (`x/y.py`, `x/y/__init__.py` or `x/y.pyi`) under `rapsam_edge/`, then each further name a
    top-level def / class / assignment / import of that module (imports are followed; a module
    with `__getattr__` may name it as a string), then a class's def / assignment / field /
    `self.name = ...` in a method. Nothing is imported.
(c) command lines. In a code span or a code-block line, `rapsam-edge VERB ...` (and a code span
    that starts with a verb followed by a `--flag`, e.g. `train --init-trunk DIR`, and
    `python -m MODULE ...` for a module of the table) must name a verb of
    `rapsam_edge.cli.COMMANDS`, and every `--flag` after it (to the end of the span, or of the
    shell command in a block) must be an option of that verb's parser (or `--debug` /
    `--help`). `python SCRIPT.py --flag` checks the flags against the `add_argument` literals
    of the script and of the `rapsam_edge` modules it imports. A code span that is only
    `--flag [VALUE]` must be an option of some verb, of a script the same document runs, of
    the C++ example (`examples/cpp/`), or in EXTERNAL_FLAGS. A value written `A|B|C` after a
    flag with choices must list only valid choices.
(d) defaults. A code span `[VERB ]--flag[ VALUE]` directly followed by `(default X` states X
    as that flag's default; a Markdown table with a `default` column and an `option` / `flag`
    column states the default of each row's flag (the verb written in the option cell, or in
    the header cell of that column). Without a verb, every verb with that flag must have that
    default. The default is the parser's or, where the parser's is None and the help says
    "(default X)" (flags generated from a config dataclass), X. Numbers compare as numbers,
    `none` as None.
(e) signatures. A code span written as a signature, `name(p1, p2=v, ...)`, of an op
    (`rapsam_edge/ops/_numpy.py`: `X = checked(X_args, ...)`, so the signature of `X_args` in
    `rapsam_edge/ops/_checks.py`), another function of `rapsam_edge/ops/__init__.py`
    (`make_tracker`) or a public name of the package (`Segmenter`) names only
    its parameters, in their order, with the code's defaults where those are literals or
    names of the contract (`SCORE_THRESHOLD`: its value in `contract.json`).
(f) sections. `docs/x.md`, "Title" points to a heading of that file that starts with Title.

A failure names the document, the line, the name and what is wrong with it, so a renamed
module, path or flag is fixed by reading the failures.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from rapsam_edge.cli import COMMANDS
from rapsam_edge.contract import shared as contract_shared

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "rapsam_edge"
DOCS = sorted(
    [REPO / "README.md", *(REPO / "docs").glob("*.md"), *(REPO / "models").glob("*/PROVENANCE.md")]
)
SOURCE_SUFFIXES = {".py", ".pyi", ".cpp", ".hpp", ".h", ".cmake"}
#: flags of other programs named alone in the docs (pip, torchrun)
EXTERNAL_FLAGS = {"--extra-index-url", "--index-url", "--nproc_per_node"}
GLOBAL_FLAGS = {"--debug", "--help", "-h"}
PLACEHOLDER_CHARS = ("<", ">", "*", "$", "...", "://")
#: suffixes of data files: `model.safetensors` is a file, not an attribute of `rapsam_edge.model`
FILE_SUFFIXES = {"json", "jsonl", "md", "png", "mp4", "safetensors", "onnx", "xml", "bin", "ckpt"}
FLAG = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*")


# --- reading the documents ------------------------------------------------------------------
@dataclass(frozen=True)
class Code:
    doc: Path
    line: int
    text: str
    block: bool  # a code-block line (shell syntax) rather than an inline span

    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def _split_blocks(text: str) -> tuple[list[tuple[int, str]], str]:
    """Code-block lines (line number, text) and the prose with those lines blanked."""
    lines = text.split("\n")
    block: list[tuple[int, str]] = []
    prose = list(lines)
    fenced = False
    indented = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            prose[i] = ""
            continue
        prev_blank = i == 0 or not lines[i - 1].strip() or lines[i - 1].startswith("#")
        if not fenced and line.startswith("    ") and (indented or prev_blank):
            indented = True
        elif line.strip():
            indented = False
        if fenced or indented:
            block.append((i + 1, line))
            prose[i] = ""
    return block, "\n".join(prose)


def _join_continuations(block: list[tuple[int, str]]) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for n, line in block:
        if pending is not None:
            n, line = pending[0], pending[1] + " " + line.strip()
            pending = None
        if line.rstrip().endswith("\\"):
            pending = (n, line.rstrip()[:-1])
            continue
        out.append((n, line))
    if pending is not None:
        out.append(pending)
    return out


@functools.cache
def _read(doc: Path) -> tuple[list[Code], str]:
    """Every code span and code-block line of a document, and its prose (blocks blanked)."""
    text = doc.read_text(encoding="utf-8")
    block, prose = _split_blocks(text)
    codes = [Code(doc, n, line, True) for n, line in _join_continuations(block)]
    for m in re.finditer(r"`([^`]+)`", prose):
        line = prose.count("\n", 0, m.start()) + 1
        codes.append(Code(doc, line, m.group(1).replace("\\|", "|"), False))
    for m in re.finditer(r"\]\(([^)\s]+)\)", prose):
        line = prose.count("\n", 0, m.start()) + 1
        codes.append(Code(doc, line, m.group(1).split("#")[0], False))
    return codes, prose


def _all_codes() -> list[Code]:
    return [c for doc in DOCS for c in _read(doc)[0]]


# --- the repository --------------------------------------------------------------------------
@functools.cache
def _repo_files() -> frozenset[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split("\n")
        files = {f for f in out if f}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: what is on disk
        files = {
            str(p.relative_to(REPO))
            for p in REPO.rglob("*")
            if p.is_file() and ".git" not in p.parts and "build" not in p.parts
        }
    return frozenset(files)


@functools.cache
def _repo_names() -> frozenset[str]:
    """Every file and folder name in the repository (to tell a real name from a placeholder)."""
    return frozenset(part for f in _repo_files() for part in f.split("/"))


@functools.cache
def _top_level() -> frozenset[str]:
    return frozenset(f.split("/")[0] for f in _repo_files())


@functools.cache
def _package_children() -> frozenset[str]:
    """Folders and modules directly under rapsam_edge/ (without suffix)."""
    return frozenset(
        p.name.split(".")[0] for p in PKG.iterdir() if not p.name.startswith(("__", "."))
    )


# --- (a) paths -------------------------------------------------------------------------------
def _is_placeholder(token: str) -> bool:
    if any(c in token for c in PLACEHOLDER_CHARS):
        return True
    for part in token.split("/"):
        stem = part.split(".")[0]
        if re.fullmatch(r"[A-Z][A-Z0-9_]*", stem) and part not in _repo_names():
            return True
    return False


def _expand_braces(token: str) -> list[str]:
    m = re.search(r"\{([^{}]*)\}", token)
    if not m:
        return [token]
    return [
        p
        for alt in m.group(1).split(",")
        for p in _expand_braces(token[: m.start()] + alt + token[m.end() :])
    ]


#: flags whose value names what a command will write, so it need not exist yet
OUTPUT_FLAGS = {"--out"}


def _path_tokens(code: Code) -> list[str]:
    tokens = []
    previous = ""
    for raw in re.split(r"[\s=]+", code.text):
        tok = raw.strip("`'\",;:()[]").rstrip(".")
        after_output_flag, previous = previous in OUTPUT_FLAGS, tok
        if not tok or tok.startswith("-") or _is_placeholder(tok) or after_output_flag:
            continue
        if "/" in tok or Path(tok).suffix in SOURCE_SUFFIXES:
            tokens.append(tok)
    return tokens


def _path_problem(tok: str, doc: Path) -> str | None:
    if "/" not in tok:
        if Path(tok).suffix in SOURCE_SUFFIXES and tok not in _repo_names():
            return "no file of the repository has this name"
        return None
    if tok.startswith("/"):
        return None
    first = tok.split("/")[0]
    if first in (".", ".."):
        base = doc.parent
    elif first in _top_level():
        base = REPO
    elif first in _package_children() and Path(tok).suffix in SOURCE_SUFFIXES:
        base = PKG
    else:  # an output or a user's path
        return None
    for path in _expand_braces(tok):
        target = (base / path).resolve()
        if not target.is_relative_to(REPO):
            return "points outside the repository"
        if not target.exists():
            return f"{target.relative_to(REPO)} does not exist"
    return None


def test_every_repository_path_the_docs_name_exists():
    problems = [
        f"{c.where()}: `{tok}`: {why}"
        for c in _all_codes()
        for tok in _path_tokens(c)
        if (why := _path_problem(tok, c.doc))
    ]
    assert not problems, "\n".join(problems)


# --- (b) modules and attributes --------------------------------------------------------------
def _module_file(parts: list[str]) -> Path | None:
    base = REPO.joinpath(*parts)
    for cand in (base.with_suffix(".py"), base / "__init__.py", base.with_suffix(".pyi")):
        if cand.is_file():
            return cand
    return None


@functools.cache
def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _top_statements(body: list[ast.stmt]):
    for node in body:
        yield node
        if isinstance(node, ast.If | ast.Try):
            yield from _top_statements(node.body + node.orelse)
            if isinstance(node, ast.Try):
                for h in node.handlers:
                    yield from _top_statements(h.body)


def _assigned_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign | ast.AugAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _import_target(module: Path, node: ast.ImportFrom) -> list[str]:
    """The dotted module an import-from reads (relative imports resolved)."""
    if node.level == 0:
        return (node.module or "").split(".")
    pkg = list(module.relative_to(REPO).with_suffix("").parts)
    if module.name != "__init__.py":
        pkg = pkg[:-1]
    else:
        pkg = pkg[:-1] if pkg[-1] == "__init__" else pkg
    pkg = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
    return pkg + ((node.module or "").split(".") if node.module else [])


def _class_has(cls: ast.ClassDef, name: str) -> bool:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return True
        elif name in _assigned_names(node):
            return True
    for node in ast.walk(cls):  # self.name = ... in a method
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
        for t in targets:
            if (
                isinstance(t, ast.Attribute)
                and t.attr == name
                and getattr(t.value, "id", "") == "self"
            ):
                return True
    return False


def _resolve_in(module: Path, names: list[str], depth: int = 0) -> str | None:
    """None when names[0] (then names[1] on a class) is defined in `module`, else why not."""
    if not names or depth > 8:
        return None
    name, rest = names[0], names[1:]
    tree = _tree(module)
    for node in _top_statements(tree.body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            return None
        if isinstance(node, ast.ClassDef) and node.name == name:
            if rest and not _class_has(node, rest[0]):
                return f"class {name} in {module.relative_to(REPO)} has no {rest[0]}"
            return None
        if name in _assigned_names(node):
            return None
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    target = _import_target(module, node)
                    if target[:1] != ["rapsam_edge"]:
                        return None  # from another package: not ours to check
                    sub = _module_file([*target, alias.name])
                    if sub is not None:  # `from . import submodule`
                        return _resolve_in(sub, rest, depth + 1)
                    src = _module_file(target)
                    if src is None:
                        return f"{module.relative_to(REPO)} imports from missing {'.'.join(target)}"
                    return _resolve_in(src, [alias.name, *rest], depth + 1)
    getattr_defined = any(
        isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body
    )
    if getattr_defined and any(
        isinstance(n, ast.Constant) and n.value == name for n in ast.walk(tree)
    ):
        return None
    return f"{module.relative_to(REPO)} defines no {name}"


def _resolve(dotted: str) -> str | None:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        module = _module_file(parts[:i])
        if module is not None:
            return _resolve_in(module, parts[i:])
    return "no such module"


@functools.cache
def _package_names() -> frozenset[str]:
    """Names rapsam_edge/__init__.py defines (`Segmenter`, `RapsamEdgeError`)."""
    names = set()
    for node in _top_statements(_tree(PKG / "__init__.py").body):
        names.update(_assigned_names(node))
        if isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    return frozenset(names - {"__all__", "__version__"})


DOTTED = re.compile(r"(?<![\w./-])rapsam_edge(?:\.[A-Za-z_]\w*)+")


def _short_names(code: Code) -> list[str]:
    """`ops.use`, `contract.Manifest`, `Segmenter.settle` in a code span, as full names."""
    if code.block:
        return []
    heads = "|".join(sorted(_package_children() | _package_names(), key=len, reverse=True))
    out = []
    for m in re.finditer(rf"(?<![\w./-])({heads})((?:\.[A-Za-z_]\w*)+)(?![\w/-])", code.text):
        if re.fullmatch(r"\.[a-z]{2,12}", m.group(2)) and not m.group(2)[1:].isidentifier():
            continue
        last = m.group(2).rsplit(".", 1)[-1]
        if "." + last in SOURCE_SUFFIXES or last in FILE_SUFFIXES:
            continue  # a file name (`model.safetensors`), not an attribute
        out.append("rapsam_edge." + m.group(1) + m.group(2))
    return out


def test_every_module_and_attribute_the_docs_name_exists():
    problems = []
    for doc in DOCS:
        codes, prose = _read(doc)
        names = [(c.where(), n) for c in codes for n in DOTTED.findall(c.text) + _short_names(c)]
        for m in DOTTED.finditer(prose):
            names.append(
                (f"{doc.relative_to(REPO)}:{prose.count(chr(10), 0, m.start()) + 1}", m.group(0))
            )
        problems += [f"{w}: {n}: {why}" for w, n in names if (why := _resolve(n))]
    assert not problems, "\n".join(problems)


# --- (c) command lines -----------------------------------------------------------------------
@functools.cache
def _parser(verb: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"rapsam-edge {verb}")
    importlib.import_module(COMMANDS[verb].module).add_arguments(parser)
    return parser


def _action(verb: str, flag: str) -> argparse.Action | None:
    return _parser(verb)._option_string_actions.get(flag)


@functools.cache
def _script_flags(script: Path) -> frozenset[str]:
    """`add_argument("--x")` literals of a script and of the rapsam_edge modules it imports."""
    flags: set[str] = set()
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen or not path.is_file():
            continue
        seen.add(path)
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument":
                flags.update(
                    a.value
                    for a in node.args
                    if isinstance(a, ast.Constant) and isinstance(a.value, str)
                )
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rapsam_edge"):
                for parts in ([*node.module.split(".")], [*node.module.split("."), "x"][:-1]):
                    if (m := _module_file(parts)) is not None:
                        todo.append(m)
    return frozenset(flags)


@functools.cache
def _example_flags() -> frozenset[str]:
    found: set[str] = set()
    for src in (REPO / "examples" / "cpp").rglob("*.cpp"):
        found.update(re.findall(r'"(--[a-z][\w-]*)"', src.read_text(encoding="utf-8")))
    return frozenset(found)


def _module_verb(module: str) -> str | None:
    return next((v for v, c in COMMANDS.items() if c.module == module), None)


@dataclass(frozen=True)
class Invocation:
    code: Code
    verb: str | None  # a rapsam-edge verb, or None for a script
    script: Path | None
    args: str


def _shell_commands(code: Code) -> list[str]:
    if not code.block:
        return [code.text]
    text = code.text.split(" #")[0].lstrip(" $")
    return [c.strip() for c in re.split(r"&&|\|\||;|(?<![\w\[])\|(?![\w\]])", text)]


def _invocations(code: Code) -> list[Invocation | str]:
    """What a span or block line runs; a string is an unknown verb."""
    out: list[Invocation | str] = []
    for cmd in _shell_commands(code):
        for m in re.finditer(r"rapsam-edge\s+([a-z][\w-]*)(.*)", cmd):
            verb, rest = m.group(1), m.group(2)
            out.append(Invocation(code, verb, None, rest) if verb in COMMANDS else verb)
        if (
            not code.block
            and (m := re.match(r"([a-z][\w-]*)\s+(--.*)", cmd))
            and m.group(1) in COMMANDS
        ):
            out.append(Invocation(code, m.group(1), None, m.group(2)))
        for m in re.finditer(r"-m\s+(rapsam_edge[\w.]*)(.*)", cmd):
            if (verb := _module_verb(m.group(1))) is not None:
                out.append(Invocation(code, verb, None, m.group(2)))
            elif m.group(1) == "rapsam_edge.cli" and (
                v := re.match(r"\s*([a-z][\w-]*)(.*)", m.group(2))
            ):
                out.append(
                    Invocation(code, v.group(1), None, v.group(2))
                    if v.group(1) in COMMANDS
                    else v.group(1)
                )
        for m in re.finditer(r"python\s+([\w./-]+\.py)(.*)", cmd):
            out.append(Invocation(code, None, REPO / m.group(1), m.group(2)))
    return out


def _choice_problems(action: argparse.Action, flag: str, args: str) -> list[str]:
    m = re.search(re.escape(flag) + r"[ =]([\w.-]+(?:\|[\w.-]+)+)", args)
    if not m or not action.choices:
        return []
    bad = [v for v in m.group(1).split("|") if v not in action.choices]
    return (
        [f"{flag} {'|'.join(bad)}: not among its choices {sorted(map(str, action.choices))}"]
        if bad
        else []
    )


def _invocation_problems(inv: Invocation) -> list[str]:
    flags = FLAG.findall(inv.args)
    if inv.script is not None:
        if not inv.script.is_file():
            return []  # (a) reports the missing script
        known = _script_flags(inv.script) | GLOBAL_FLAGS
        return [f"{inv.script.name} has no option {f}" for f in flags if f not in known]
    problems = []
    for flag in flags:
        if flag in GLOBAL_FLAGS:
            continue
        action = _action(inv.verb, flag)
        if action is None:
            problems.append(f"`rapsam-edge {inv.verb}` has no option {flag}")
        else:
            problems += _choice_problems(action, flag, inv.args)
    return problems


def _all_verb_flags() -> set[str]:
    return {f for verb in COMMANDS for f in _parser(verb)._option_string_actions}


def test_every_command_verb_and_flag_the_docs_name_exists():
    problems = []
    for doc in DOCS:
        codes = _read(doc)[0]
        invs = [i for c in codes for i in _invocations(c)]
        scripts = {i.script for i in invs if isinstance(i, Invocation) and i.script is not None}
        for c in codes:
            for inv in _invocations(c):
                if isinstance(inv, str):
                    problems.append(f"{c.where()}: `rapsam-edge {inv}`: no such verb")
                else:
                    problems += [f"{c.where()}: {p}" for p in _invocation_problems(inv)]
        known = (
            _all_verb_flags()
            | {f for s in scripts for f in _script_flags(s)}
            | _example_flags()
            | EXTERNAL_FLAGS
            | GLOBAL_FLAGS
        )
        for c in codes:
            if not c.block and (
                m := re.fullmatch(r"(--[a-zA-Z][\w-]*)(?:[ =]\S+)?", c.text.strip())
            ):
                if m.group(1) not in known:
                    problems.append(
                        f"{c.where()}: `{m.group(1)}`: no command, script or program here has it"
                    )
    assert not problems, "\n".join(problems)


# --- (d) stated defaults ---------------------------------------------------------------------
def _same(stated: str, default: object) -> bool:
    stated = stated.strip().strip("`'\"")
    if default is None:
        return stated.lower() in {"none", "off", "unset"}
    if isinstance(default, list | tuple):
        default = " ".join(map(str, default))
    try:
        return float(stated) == float(default)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return stated == str(default)


def _defaults(action: argparse.Action) -> list[object]:
    """The defaults a flag stands for: its parser default and, where that is None, the one its
    help shows (a flag generated from a config dataclass, whose None means "keep the
    config's", or "default: the bundle's")."""
    out: list[object] = [action.default]
    if action.default is None and action.help:
        m = re.search(r"\(default:?\s+([^);,]+)", action.help)
        if m:
            out.append(m.group(1).strip())
    return out


def _default_problems(where: str, verb: str | None, flag: str, stated: str) -> list[str]:
    verbs = [verb] if verb else [v for v in COMMANDS if _action(v, flag) is not None]
    if verb and _action(verb, flag) is None:
        return [f"{where}: `rapsam-edge {verb}` has no option {flag}"]
    if not verbs:
        return [f"{where}: no verb has {flag}"]
    return [
        f"{where}: {flag} of `rapsam-edge {v}` defaults to {_defaults(_action(v, flag))[-1]!r}, "
        f"the docs say {stated.strip()!r}" + ("" if verb else " (name the verb where they differ)")
        for v in verbs
        if not any(_same(stated, d) for d in _defaults(_action(v, flag)))
    ]


def _verb_flag(text: str) -> tuple[str | None, str] | None:
    m = re.match(r"(?:rapsam-edge\s+)?(?:([a-z][\w-]*)\s+)?(--[a-zA-Z][\w-]*)", text.strip())
    if not m:
        return None
    verb = m.group(1) if m.group(1) in COMMANDS else None
    return verb, m.group(2)


def _table_defaults(doc: Path, prose: str) -> list[tuple[str, str | None, str, str]]:
    out = []
    lines = prose.split("\n")
    for i, line in enumerate(lines):
        cells = [c.strip().lower() for c in line.strip().strip("|").split("|")]
        if not line.lstrip().startswith("|") or "default" not in cells:
            continue
        opt = next((k for k, c in enumerate(cells) if c.endswith(("option", "flag"))), None)
        if opt is None:
            continue
        head_spans = re.findall(r"`([^`]+)`", line.strip().strip("|").split("|")[opt])
        head_verb = head_spans[0].removeprefix("rapsam-edge ").strip() if head_spans else None
        col = cells.index("default")
        for j in range(i + 2, len(lines)):
            if not lines[j].lstrip().startswith("|"):
                break
            row = re.split(r"(?<!\\)\|", lines[j].strip().strip("|"))
            spans = re.findall(r"`([^`]+)`", row[opt])
            parsed = _verb_flag(spans[0]) if spans else None
            if parsed is None:
                continue
            verb = parsed[0] or (head_verb if head_verb in COMMANDS else None)
            out.append((f"{doc.name}:{j + 1}", verb, parsed[1], row[col]))
    return out


def _stated_default_problems(doc: Path) -> list[str]:
    problems = []
    prose = _read(doc)[1]
    for m in re.finditer(r"`([^`]+)`\s*\(default:?\s+([^;,)]+)", prose):
        parsed = _verb_flag(m.group(1))
        if parsed is not None:
            where = f"{doc.name}:{prose.count(chr(10), 0, m.start()) + 1}"
            problems += _default_problems(where, *parsed, m.group(2))
    for where, verb, flag, stated in _table_defaults(doc, prose):
        problems += _default_problems(where, verb, flag, stated)
    return problems


def test_every_default_the_docs_state_is_the_parsers():
    problems = [p for doc in DOCS for p in _stated_default_problems(doc)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("see `runtime/nowhere.py`", 1),  # (a) a missing module path
        ("see `DIR/coco` and `demo_out/x.png` and `runs/RUN`", 0),  # placeholders, outputs
        ("`rapsam-edge benchmark --out benchmarks/results/new`", 0),  # what --out will write
        ("`rapsam-edge benchmark --bundle models/nowhere --out x`", 1),  # an input must exist
        ("`rapsam_edge.runtime.segmenter.NoSuchThing`", 1),  # (b)
        ("`rapsam-edge demo --no-such-flag`", 1),  # (c)
        ("`rapsam-edge no-such-verb`", 1),
        ("`rapsam-edge quantize --to int8|int3`", 1),  # (c) a choice that is not one
        ("`quantize --max-pq-drop` (default 2.0)", 1),  # (d) in prose
        ("`quantize --max-pq-drop` (default 1.0)", 0),
        ("| `quantize` option | default |\n|---|---|\n| `--val-images` | 7 |", 1),  # (d) a table
        ("| option | default |\n|---|---|\n| `profile --iters` | 100 |", 0),
    ],
)
def test_the_rules_catch_what_they_should(tmp_path, text, expected):
    doc = tmp_path / "probe.md"
    doc.write_text(text + "\n", encoding="utf-8")
    codes = _read(doc)[0]
    found = [t for c in codes for t in _path_tokens(c) if _path_problem(t, doc)]
    found += [n for c in codes for n in DOTTED.findall(c.text) if _resolve(n)]
    for c in codes:
        for inv in _invocations(c):
            found += [inv] if isinstance(inv, str) else _invocation_problems(inv)
    found += _stated_default_problems(doc)
    assert len(found) == expected, found


# --- (e) signatures --------------------------------------------------------------------------
#: where the documented call signatures are defined: the ops' numpy twins (the public ops are
#: wrappers of them; each twin has its `X_args` check's signature), the rest of the ops
#: module (`make_tracker`, `set_num_threads`) and the package's public names (`Segmenter`)
SIGNATURE_MODULES = (PKG / "ops" / "_numpy.py", PKG / "ops" / "__init__.py", PKG / "__init__.py")


def _definition(module: Path, name: str, depth: int = 0) -> ast.AST | None:
    """The def or class `name` of `module`, following `from x import name` inside the package
    and an op made by `name = checked(name_args, kernel)` (`ops/_checks.py`) to `name_args`,
    whose signature the op has."""
    for node in _top_statements(_tree(module).body):
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
            return node
        if (
            name in _assigned_names(node)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", "") == "checked"
            and node.value.args
            and isinstance(node.value.args[0], ast.Name)
            and depth < 8
        ):
            return _definition(module, node.value.args[0].id, depth + 1)
        if isinstance(node, ast.ImportFrom) and depth < 8:
            for alias in node.names:
                if (alias.asname or alias.name) == name:
                    src = _module_file(_import_target(module, node))
                    return _definition(src, alias.name, depth + 1) if src else None
    return None


def _signature(node: ast.AST) -> list[tuple[str, ast.expr | None]]:
    """(name, default expression) of each parameter, `self` dropped; a class: its __init__."""
    if isinstance(node, ast.ClassDef):
        init = next(
            (n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None
        )
        return _signature(init)[1:] if init else []
    a = node.args
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    return list(zip((p.arg for p in positional), defaults)) + list(
        zip((p.arg for p in a.kwonlyargs), a.kw_defaults)
    )


CALL = re.compile(r"([A-Za-z_]\w*)\((.*)\)")


def _literal_default(default: ast.expr | None) -> tuple[bool, object]:
    """(known, value) of a parameter default: a literal, or a name of the contract
    (`SCORE_THRESHOLD`, from `rapsam_edge/contract/contract.json`)."""
    if isinstance(default, ast.Constant):
        return True, default.value
    if isinstance(default, ast.Name) and default.id in contract_shared.__all__:
        return True, getattr(contract_shared, default.id)
    return False, None


def _signature_problems(code: Code) -> list[str]:
    """A span written as a signature, `name(p1, p2=v, ...)` (every part a parameter name,
    `name=default`, `*` or `...`, and at least one bare name or `...`), of a callable of
    SIGNATURE_MODULES: its parameters exist, in this order, and each default written is the
    code's where the code's is a literal or a contract name."""
    m = CALL.fullmatch(code.text.strip())
    if code.block or not m:
        return []
    parts = [p.strip() for p in m.group(2).split(",")]
    if not all(re.fullmatch(r"\*{0,2}\w*(=.+)?|\.\.\.", p) for p in parts) or not any(
        re.fullmatch(r"\w+|\.\.\.", p) for p in parts
    ):
        return []  # a call with values (`Segmenter("BUNDLE")`), not a signature
    node = next((d for mod in SIGNATURE_MODULES if (d := _definition(mod, m.group(1)))), None)
    if node is None:
        return []
    params = _signature(node)
    names = [p for p, _ in params]
    problems, last = [], -1
    for part in parts:
        if part in ("", "...", "*") or part.startswith("*"):
            continue
        name, _, value = part.partition("=")
        if name not in names:
            problems.append(f"{m.group(1)} has no parameter {name}")
            continue
        index = names.index(name)
        if index < last:
            problems.append(f"{m.group(1)}: {name} comes before the parameters written ahead of it")
        last = index
        known, code_default = _literal_default(params[index][1])
        if value and known:
            try:
                written = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                written = value.strip()
            if written != code_default:
                problems.append(
                    f"{m.group(1)}: {name} defaults to {code_default!r}, the docs say {value}"
                )
    return problems


def test_every_signature_the_docs_write_is_the_codes():
    problems = [f"{c.where()}: {p}" for c in _all_codes() for p in _signature_problems(c)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "span, expected",
    [
        ("panoptic_fuse(cls_logits, mask_logits, valid_hw, out_hw, is_thing)", 0),
        ("letterbox(image, size, pad_divisor=64)", 1),  # a wrong default
        ("letterbox(size, image)", 1),  # the wrong order
        ("Segmenter(bundle=None, colour_order='RGB', ...)", 1),  # no such parameter
        ("overlay(image, labels, alpha=0.5, boundary=True)", 0),
        ("overlay(image, labels, alpha=0.4)", 1),  # an op made by checked(overlay_args, ...)
        ("panoptic_fuse(cls_logits, ..., score_threshold=0.8)", 0),  # a contract default
        ("panoptic_fuse(cls_logits, ..., overlap_threshold=0.5)", 1),
        ("make_tracker(match_threshold, ..., momentum)", 0),  # the ops module's own functions
        ("make_tracker(momentum, max_missed)", 1),
        ('Segmenter("edge-s-synthetic-ov-int8", "openvino")', 0),  # a call, not a signature
    ],
)
def test_the_signature_rule_catches_what_it_should(span, expected):
    assert len(_signature_problems(Code(REPO / "README.md", 1, span, False))) == expected


# --- (f) section references ------------------------------------------------------------------
SECTION_REF = re.compile(r"`([\w./-]+\.md)`,\s+\"([^\"]+)\"")


def _headings(doc: Path) -> list[str]:
    text = _split_blocks(doc.read_text(encoding="utf-8"))[1]
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return [re.sub(r"^\d+\.\s*", "", h.strip().replace("`", "")) for h in headings]


def test_every_section_the_docs_point_to_exists():
    """`docs/x.md`, "Title" points to a heading of docs/x.md that starts with Title (a
    heading's number, "6. ", not counted)."""
    problems = []
    for doc in DOCS:
        prose = _read(doc)[1]
        for m in SECTION_REF.finditer(prose):
            target = REPO / m.group(1)
            where = f"{doc.relative_to(REPO)}:{prose.count(chr(10), 0, m.start()) + 1}"
            if not target.is_file():
                continue  # (a) reports it
            if not any(h.startswith(m.group(2)) for h in _headings(target)):
                problems.append(f"{where}: {m.group(1)} has no section {m.group(2)!r}")
    assert not problems, "\n".join(problems)
