"""One manifest validation for both runtimes (issue 26): a table of hostile manifests, each
written into a copy of the shipped default bundle (its files hard-linked, the manifest
rewritten; a case that changes a file rewrites its checksum), refused by the Python loader
(``rapsam_edge.bundle.load_bundle``) and by the C++ loader (``rapsam_check_bundle DIR``,
when ``RAPSAM_CPP_CHECK_BUNDLE`` points at it) naming the same field with the same message;
valid manifests accepted by both.

The table: hand-written cases (the kinds the issue found, JSON-level attacks, the rules
between fields) plus mutations generated from ``manifest.schema.json`` for every field of
the real manifest: missing, wrong type, below its minimum, above its maximum, not in its
enum / const, an empty or over-long string, too many items or keys.

Also: the schema is valid draft 2020-12 and ``jsonschema`` gives the same valid / invalid
verdict as ``contract.schema`` on every case; a named pipe as manifest.json or as a listed
graph file is refused by both (the C++ program under a 10 s timeout, Python in a subprocess
under the same timeout) instead of hanging.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rapsam_edge.bundle import load_bundle, sha256_file
from rapsam_edge.contract import DTYPES, GRAPH_FORMATS, PRECISIONS
from rapsam_edge.contract.schema import MANIFEST_SCHEMA, first_error
from rapsam_edge.contract.shared import GRAPH_SPECS, MAX_JSON_DEPTH, MAX_MANIFEST_BYTES
from rapsam_edge.errors import BundleError

CPP = os.environ.get("RAPSAM_CPP_CHECK_BUNDLE")
needs_cpp = pytest.mark.skipif(
    not CPP, reason="RAPSAM_CPP_CHECK_BUNDLE (the built rapsam_check_bundle) is not set"
)
TIMEOUT = 10  # seconds: a case that takes longer is a hang
_FIELD = re.compile(r"(?<![\w/.])(manifest(?:\.[A-Za-z_]\w*|\[[^\]]*\])*): ")


@dataclass
class Case:
    """A manifest (a JSON value, or raw text) and what to do to the bundle's files."""

    manifest: Any = None
    text: str | None = None
    files: Callable[[Path], None] | None = None
    valid: bool | None = False  # None: either, but both runtimes agree
    names: str | None = None  # a file-level refusal: the file both messages must name
    # the JSON value the schema interpreters see (None: not JSON Python reads)
    schema_checked: bool = True


# --- the table -------------------------------------------------------------------------
def _base_manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _at(m: Any, path: tuple) -> Any:
    for k in path:
        m = m[k]
    return m


def _set(m: dict, path: tuple, value: Any) -> dict:
    m = copy.deepcopy(m)
    parent = _at(m, path[:-1])
    if value is _DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return m


_DELETE = object()


def _resolve(s: dict) -> dict:
    while "$ref" in s:
        extra = {k: v for k, v in s.items() if k != "$ref"}
        s = {**MANIFEST_SCHEMA["$defs"][s["$ref"].rsplit("/", 1)[1]], **extra}
    return s


def _fields(value: Any, s: dict, path: tuple) -> Iterator[tuple[tuple, dict, bool | None]]:
    """(path, schema node, required) of every field of ``value`` the schema rules; required
    is None for an array item or a key of a map (``additionalProperties``)."""
    s = _resolve(s)
    if isinstance(value, dict):
        props = s.get("properties", {})
        extra = s.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is not None:
                required = key in s.get("required", ()) if key in props else None
                yield (*path, key), _resolve(sub), required
                yield from _fields(item, sub, (*path, key))
    elif isinstance(value, list) and "items" in s:
        for i, item in enumerate(value):
            yield (*path, i), _resolve(s["items"]), None
            yield from _fields(item, s["items"], (*path, i))


#: a value of each JSON type, to find one a field does not accept
_OTHER = (("string", "7"), ("number", 7.5), ("boolean", True), ("array", []))


def _mutations(value: Any, s: dict) -> Iterator[tuple[str, Any]]:
    types = s.get("type", [])
    types = types if isinstance(types, list) else [types]
    if types:
        yield "wrong type", next(v for t, v in _OTHER if t not in types)
    if "minimum" in s:
        yield "below minimum", s["minimum"] - (1 if isinstance(s["minimum"], int) else 0.5)
    if "maximum" in s:
        yield "above maximum", s["maximum"] + (1 if isinstance(s["maximum"], int) else 0.5)
    if "enum" in s:
        yield "not in enum", "bogus" if isinstance(s["enum"][0], str) else max(s["enum"]) + 1
    if "const" in s:
        yield "not the const", "bogus"
    if isinstance(value, str):
        if "minLength" in s:
            yield "empty string", ""
        if "maxLength" in s:
            yield "over-long string", "x" * (s["maxLength"] + 1)
        if "pattern" in s:
            yield "pattern", "not-matching.bin"
    if isinstance(value, list):
        if "maxItems" in s and value:
            yield "too many items", [value[0]] * (s["maxItems"] + 1)
        if "minItems" in s:
            yield "too few items", value[: s["minItems"] - 1]


def _generated(base: dict) -> dict[str, Case]:
    cases = {}
    for path, s, required in _fields(base, MANIFEST_SCHEMA, ()):
        if path[:1] in (("export",), ("provenance",)):
            continue
        name = ".".join(map(str, path))
        if required is not None:
            # a required field missing is refused; an optional one missing is valid
            cases[f"{name}: missing"] = Case(_set(base, path, _DELETE), valid=not required)
        elif path[0] == "files":  # a checksum dropped: refused or not, both runtimes agree
            cases[f"{name}: missing"] = Case(_set(base, path, _DELETE), valid=None)
        for what, value in _mutations(_at(base, path), s):
            cases[f"{name}: {what}"] = Case(_set(base, path, value))
    return cases


def _dup_key_text(base: dict) -> str:
    text = json.dumps(base, indent=1)
    return text.replace('"color_order": "RGB"', '"color_order": "RGB", "color_order": "XYZ"', 1)


def _fifo(rel: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        if (root / rel).exists():
            (root / rel).unlink()
        os.mkfifo(root / rel)

    return make


def _socket(rel: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        (root / rel).unlink()
        with tempfile.TemporaryDirectory(dir="/tmp") as short:  # AF_UNIX: 108-byte paths
            s = socket.socket(socket.AF_UNIX)
            s.bind(os.path.join(short, "s"))
            s.close()
            os.rename(os.path.join(short, "s"), root / rel)

    return make


def _hand_written(base: dict) -> dict[str, Case]:
    s = lambda path, v: Case(_set(base, path, v))  # noqa: E731
    pd = ("graphs", "panoptic_decoder")
    outs = base["graphs"]["panoptic_decoder"]["outputs"]
    return {
        # the twelve kinds the issue found accepted by the C++ loader
        "num_classes 0": s(("num_classes",), 0),
        "num_classes 10**6": s(("num_classes",), 10**6),
        "num_queries 0": s(("num_queries",), 0),
        "num_queries 2**31": s(("num_queries",), 2**31),
        "bogus dtype": s(("graphs", "encoder", "outputs", 0, "dtype"), "complex128"),
        "negative shape": s(("graphs", "encoder", "outputs", 0, "shape"), ["B", -128, "h", "w"]),
        "unknown graph": s(("graphs", "tracker"), base["graphs"]["encoder"]),
        "duplicate key": Case(text=_dup_key_text(base), schema_checked=False),
        "score_threshold 1.5": s(("postprocess", "score_threshold"), 1.5),
        "overlap_threshold -0.1": s(("postprocess", "overlap_threshold"), -0.1),
        "color_order XYZ": s(("input", "color_order"), "XYZ"),
        "feat_stride 2**30": s(("feat_stride",), 2**30),
        # JSON-level attacks
        "NaN threshold": Case(
            text=json.dumps(base).replace('"score_threshold": 0.8', '"score_threshold": NaN'),
            schema_checked=False,
        ),
        "Infinity": Case(
            text=json.dumps(base).replace('"pad_value": 0', '"pad_value": Infinity'),
            schema_checked=False,
        ),
        "float overflow": Case(
            text=json.dumps(base).replace('"overlap_threshold": 0.8', '"overlap_threshold": 1e400'),
            schema_checked=False,
        ),
        "integer beyond 64 bits": Case(
            text=json.dumps(base).replace('"feat_stride": 8', '"feat_stride": ' + "9" * 30),
            schema_checked=False,
        ),
        "integer of 5000 digits": Case(
            text=json.dumps(base).replace('"feat_stride": 8', '"feat_stride": ' + "9" * 5000),
            schema_checked=False,
        ),
        "nested too deep": Case(
            text=json.dumps(
                _set(base, ("export", "x"), json.loads("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH))
            ),
            schema_checked=False,
        ),
        "nested at the limit": Case(
            _set(
                base,
                ("export", "x"),
                json.loads("[" * (MAX_JSON_DEPTH - 2) + "]" * (MAX_JSON_DEPTH - 2)),
            ),
            valid=True,
        ),
        "byte order mark": Case(text="\ufeff" + json.dumps(base), schema_checked=False),
        "lone surrogate": Case(
            text=json.dumps(base).replace('"edge-s"', '"\\ud800"', 1), schema_checked=False
        ),
        # nlohmann's lexer took a NUL byte for the end of the input (round-3 attack: C++
        # accepted "{...}\0junk", Python refused it)
        "NUL byte after the document": Case(
            text=json.dumps(base) + "\x00junk", schema_checked=False
        ),
        "NUL byte in a string": Case(
            text=json.dumps(base).replace('"edge-s"', '"edge\x00-s"', 1), schema_checked=False
        ),
        "not an object": Case([base]),
        "empty file": Case(text="", schema_checked=False),
        "over the size limit": Case(
            text=json.dumps(base) + " " * (MAX_MANIFEST_BYTES + 1 - len(json.dumps(base))),
            schema_checked=False,
        ),
        "sha256 uppercase": s(("files", "encoder.onnx"), base["files"]["encoder.onnx"].upper()),
        "sha256 trailing newline": s(
            ("files", "encoder.onnx"), base["files"]["encoder.onnx"] + "\n"
        ),
        "int as float": s(("feat_stride",), 8.0),
        "bool as int": s(("num_queries",), True),
        "class name over 256 bytes (non-ASCII)": s(("classes", 0, "name"), "é" * 129),
        # floats quoted in messages: the same text (Python's repr) from both runtimes
        **{
            f"float {v!r}": s(("postprocess", "score_threshold"), v)
            for v in (
                1.0000000000000002,
                12345678.9,
                1e16,
                1.7976931348623157e308,
                -1e-05,
                -0.0001,
                -123.456,
                1234567890123456.7,
                0.1 + 0.2 + 1,
            )
        },
        # an object of 100,000 keys (1.7 MB): parsed in n log n by both (a quadratic insert,
        # as nlohmann::ordered_json does, would take minutes)
        "100k keys": Case(
            _set(base, ("export", "k"), {f"k{i}": i for i in range(100_000)}), valid=True
        ),
        # the rules between fields
        "class ids out of order": s(("classes", 3, "id"), 4),
        "num_classes != classes": s(("num_classes",), 11),
        "long_side not a multiple": s(("input", "long_side"), 330),
        "encoder missing": Case(_set(base, ("graphs", "encoder"), _DELETE)),
        "role dtype": s(("graphs", "encoder", "inputs", 0, "dtype"), "float32"),
        "role rank": s(("graphs", "prompt_decoder", "outputs", 1, "shape"), ["B", "P", 1]),
        "tensor count": s((*pd, "outputs"), outs[:2]),
        "outputs swapped": s((*pd, "outputs"), [outs[1], outs[0], outs[2]]),
        "duplicate tensor names": s((*pd, "outputs", 2, "name"), outs[0]["name"]),
        "num_queries vs decoder": s(("num_queries",), 49),
        "classes vs decoder": s((*pd, "outputs", 0, "shape"), ["B", 50, 14]),
        "graph file leaves the bundle": s(("graphs", "encoder", "files", "onnx"), "../x.onnx"),
        "absolute files key": Case(_set(base, ("files", "/etc/passwd"), "0" * 64)),
        "graph file without sha256": s(("files", "encoder.bin"), _DELETE),
        # (the wheel's copy of the bundle has no weights: "weights" null)
        **(
            {
                "weights without sha256": s(("files", base["weights"]["config"]), _DELETE),
                "weights path leaves the bundle": s(("weights", "file"), "../w.safetensors"),
            }
            if base.get("weights")
            else {
                "weights given, not listed": s(("weights",), {"file": "w.bin", "config": "c.json"})
            }
        ),
        # files that are not regular files: refused, never opened (no hang)
        "graph file is a named pipe": Case(
            base, files=_fifo("prompt_decoder.bin"), names="'prompt_decoder.bin' is a named pipe"
        ),
        "graph file is a socket": Case(
            base, files=_socket("encoder.xml"), names="'encoder.xml' is a socket"
        ),
        "manifest is a named pipe": Case(base, files=_fifo("manifest.json"), names="manifest.json"),
        "unlisted named pipe": Case(
            base, files=_fifo("extra.onnx_data"), names="'extra.onnx_data' is a named pipe"
        ),
        # a quantized bundle's gate record (contract/gate_record.py and its C++ twin)
        "quantized, no gate": s(("export", "quantization"), {"precision": "int8"}),
        "quantized, gate null": s(("export", "quantization"), {"gate": None}),
        "quantized, gate failed": s(("export", "quantization"), {"gate": {"passed": False}}),
        "quantized, gate passed 1": s(("export", "quantization"), {"gate": {"passed": 1}}),
        "quantized, gate not an object": s(("export", "quantization"), {"gate": "yes"}),
        "quantized, record not an object": s(("export", "quantization"), [1]),
        "quantized, passed null, no reason": s(
            ("export", "quantization"), {"gate": {"passed": None}}
        ),
        "quantized, gate skipped with a reason": Case(
            _set(base, ("export", "quantization"), {"gate": {"passed": None, "skipped": "no GPU"}}),
            valid=True,
        ),
        "quantized, gate passed": Case(
            _set(base, ("export", "quantization"), {"gate": {"passed": True}}), valid=True
        ),
        # valid
        "shipped manifest": Case(base, valid=True),
        "weights null": Case(_set(base, ("weights",), None), valid=True),
        "BGR input": s(("input", "color_order"), "BGR"),
    }


def _table() -> dict[str, Case]:
    from rapsam_edge.assets import default_bundle

    base = _base_manifest(default_bundle())
    cases = _hand_written(base)
    cases["BGR input"].valid = True
    cases.update(_generated(base))
    return cases


TABLE = _table()


# --- running one case through both runtimes --------------------------------------------
@pytest.fixture(scope="module")
def base_bundle(shipped_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("parity") / "base"
    shutil.copytree(shipped_bundle, out)
    return out


def _write_case(base: Path, case: Case, root: Path) -> Path:
    root.mkdir()
    for f in base.iterdir():
        if f.name != "manifest.json":
            os.link(f, root / f.name)
    manifest = root / "manifest.json"
    if case.text is not None:
        manifest.write_text(case.text, encoding="utf-8", errors="surrogatepass")
    else:
        m = copy.deepcopy(case.manifest)
        manifest.write_text(json.dumps(m, indent=1, ensure_ascii=False), encoding="utf-8")
    if case.files is not None:
        case.files(root)
    return root


def _python_verdict(root: Path, in_subprocess: bool) -> str:
    """ "ok" or the error message, as load_bundle gives it."""
    if in_subprocess:  # a case that could hang: never in this process
        code = (
            "import sys\nfrom rapsam_edge.bundle import load_bundle\nfrom rapsam_edge.errors "
            "import BundleError\ntry:\n    load_bundle(sys.argv[1])\n    print('ok')\n"
            "except BundleError as e:\n    print(e)\n"
        )
        env = dict(os.environ)  # conftest: PYTHONPATH leads to the imported rapsam_edge
        r = subprocess.run(
            [sys.executable, "-c", code, str(root)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
        )
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()
    try:
        load_bundle(root)
    except BundleError as e:
        return str(e)
    return "ok"


def _cpp_verdict(root: Path) -> str:
    r = subprocess.run([CPP, str(root)], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode in (0, 1), f"rapsam_check_bundle crashed: rc {r.returncode}\n{r.stderr}"
    assert not r.stderr.strip(), r.stderr  # a sanitizer report, or any other noise
    out = r.stdout.strip()
    if r.returncode == 0:
        assert out == "ok"
        return out
    assert out.startswith("BundleError: "), out
    return out.removeprefix("BundleError: ")


def _reason(message: str, root: Path) -> str:
    """What a refusal says, without the bundle's path: "<field>: <message>" for a field
    error, else the text after the file named (JSON-level and file-level errors; a parser's
    own detail in parentheses dropped)."""
    m = _FIELD.search(message)
    if m:
        return message[m.start() :]
    text = message.replace(str(root), "<bundle>").replace("bundle <bundle>", "<bundle>")
    return re.sub(r"\(.*\)$", "(...)", text)


def _is_risky(case: Case) -> bool:
    return case.files is not None


@pytest.mark.parametrize("name", TABLE)
def test_python_refuses_naming_the_field(base_bundle, tmp_path, name):
    case = TABLE[name]
    root = _write_case(base_bundle, case, tmp_path / "b")
    verdict = _python_verdict(root, _is_risky(case))
    if case.valid:
        assert verdict == "ok"
    elif case.valid is False:
        assert verdict != "ok", f"{name}: accepted"
        if case.names is not None:
            assert case.names in verdict
        elif case.text is None:
            assert _FIELD.search(verdict), f"{name}: no field named in {verdict!r}"


@needs_cpp
@pytest.mark.parametrize("name", TABLE)
def test_cpp_refuses_the_same_field_with_the_same_message(base_bundle, tmp_path, name):
    case = TABLE[name]
    root = _write_case(base_bundle, case, tmp_path / "b")
    py = _python_verdict(root, _is_risky(case))
    cpp = _cpp_verdict(root)
    if py == "ok" or cpp == "ok":
        assert py == cpp == "ok", f"{name}: Python {py!r}, C++ {cpp!r}"
        assert case.valid is not False, f"{name}: accepted by both"
        return
    if case.names is not None:
        assert case.names in py and case.names in cpp, f"{name}:\n Python {py}\n C++    {cpp}"
        return
    assert _reason(py, root) == _reason(cpp, root), f"{name}:\n Python {py}\n C++    {cpp}"


def test_schema_is_valid_draft_2020_12_and_jsonschema_agrees():
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(MANIFEST_SCHEMA)
    v = jsonschema.Draft202012Validator(MANIFEST_SCHEMA)
    # where our interpreter is stricter than the standard, on purpose (schema.py docstring)
    deviations = {
        "sha256 trailing newline",
        "int as float",
        "class name over 256 bytes (non-ASCII)",
    }
    compared = 0
    for name, case in TABLE.items():
        if not case.schema_checked or (case.manifest is None and case.text is None):
            continue
        value = case.manifest if case.text is None else json.loads(case.text)
        ours = first_error(value) is None
        if name in deviations:
            assert not ours and v.is_valid(value), name
            continue
        assert ours == v.is_valid(value), f"{name}: ours {first_error(value)}"
        compared += 1
    assert compared > 200


def test_the_schema_is_the_one_home_of_the_field_facts():
    """The Python constants are read from the schema; its graph names are contract.json's."""
    graph = MANIFEST_SCHEMA["$defs"]["graph"]["properties"]
    assert set(DTYPES) == set(MANIFEST_SCHEMA["$defs"]["tensor"]["properties"]["dtype"]["enum"])
    assert set(PRECISIONS) == set(graph["precision"]["enum"])
    assert set(GRAPH_FORMATS) == set(graph["files"]["properties"])
    assert list(MANIFEST_SCHEMA["properties"]["graphs"]["properties"]) == list(GRAPH_SPECS)
    for spec in GRAPH_SPECS.values():
        for t in (*spec["inputs"], *spec["outputs"]):
            assert t["dtype"] in DTYPES


def test_table_covers_every_field_kind():
    kinds = {n.split(": ", 1)[1] for n in TABLE if ": " in n}
    assert {"missing", "wrong type", "below minimum", "above maximum", "not in enum"} <= kinds
    assert sum(": " in n for n in TABLE) > 200


def test_a_file_change_with_its_checksum_rewritten_still_loads(base_bundle, tmp_path):
    """The harness itself: a case that changes a file and rewrites its checksum is valid."""
    root = _write_case(base_bundle, TABLE["shipped manifest"], tmp_path / "b")
    m = json.loads((root / "manifest.json").read_text())
    # a listed file the loader hashes but does not parse (an installed bundle may carry no
    # training config.json: the wheel ships the graphs only)
    name = sorted(m["files"])[0]
    (root / name).unlink()  # a hard link to the shipped file: never written through
    (root / name).write_text("changed")
    m["files"][name] = sha256_file(root / name)
    (root / "manifest.json").write_text(json.dumps(m))
    assert _python_verdict(root, False) == "ok"
    if CPP:
        assert _cpp_verdict(root) == "ok"


def test_the_interpreter_refuses_a_keyword_it_does_not_know():
    """An unknown keyword is an error, not ignored: the two twins cannot silently diverge
    (the C++ twin throws std::logic_error the same way)."""
    with pytest.raises(ValueError, match="not supported"):
        first_error(1, {"type": "integer", "multipleOf": 2})
    with pytest.raises(ValueError, match=r"\$ref"):
        first_error(1, {"$ref": "other.json#/x"})


def test_field_paths_of_keys_that_are_not_identifiers():
    base = _base_manifest(Path(__file__).resolve().parents[1] / "models" / "edge-s-synthetic")
    m = _set(base, ("files", "a b.onnx"), "XYZ")
    assert first_error(m) == (
        'manifest.files["a b.onnx"]',
        "'XYZ' is not a lowercase sha256 hex digest",
    )


def test_a_staging_folder_is_refused_by_both(base_bundle, tmp_path):
    """A writer's unfinished staging folder (its name holds contract.json's
    bundles.partial_mark) is never loaded, whatever its manifest says."""
    from rapsam_edge.contract.shared import PARTIAL_BUNDLE_MARK

    root = _write_case(base_bundle, Case(_base_manifest(base_bundle), valid=True), tmp_path / "b")
    staged = root.rename(tmp_path / f".out{PARTIAL_BUNDLE_MARK}1234-abcd")
    py = _python_verdict(staged, False)
    assert "staging folder" in py
    if CPP:
        cpp = _cpp_verdict(staged)
        assert "staging folder" in cpp and "not a bundle" in cpp, cpp
