"""A small JSON Schema (draft 2020-12) interpreter for the manifest schema
(``manifest.schema.json``, the one home of the manifest's field rules), twin of the C++
``csrc/runtime/manifest_check.cpp``: both walk the schema in the same order and report the
FIRST error with the same path and the same wording, so a manifest one runtime refuses the
other refuses naming the same field.

Keywords understood (the schema uses no others; an unknown keyword is an error, so the two
interpreters cannot silently diverge): ``$ref`` (``#/$defs/<name>`` only), ``type``,
``const``, ``enum``, ``minimum``, ``maximum``, ``minLength``, ``maxLength``, ``pattern`` (with
``description`` as the wording of its error), ``minItems``, ``maxItems``, ``items``,
``required``, ``properties``, ``additionalProperties``, ``propertyNames``, ``minProperties``,
``maxProperties``, and the annotations ``$schema``, ``$id``, ``$comment``, ``title``,
``$defs``.

Order of the walk (one node): ``$ref``, then ``type``; for strings ``minLength``,
``maxLength``, ``pattern``; for numbers finiteness, ``minimum``, ``maximum``; for arrays
``minItems``, ``maxItems``, then each item in order; for objects ``minProperties``,
``maxProperties``, ``required`` (in the schema's order), the ``properties`` present, then
every key (``propertyNames``, then for a key not in ``properties``,
``additionalProperties``); last ``const`` and ``enum``. Object keys are always visited in
sorted order (code points, which is UTF-8 byte order), never in document order: the C++ twin
stores objects in a std::map (nlohmann's insertion-ordered map inserts in linear time).

Deviation from the standard, on purpose: ``integer`` is a JSON number written without a
fraction or an exponent (Python ``int``), so ``8.0`` is not an integer here (it is for
``jsonschema``); numbers must be finite; string lengths count UTF-8 bytes (not code points);
a ``pattern``'s final ``$`` matches only at the very end (ECMAScript, not Python's ``re``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_SCHEMA", "SCHEMA_FILE", "child_path", "first_error", "render"]

#: the manifest schema (also embedded into the C++ runtime by CMake: cmake/contract.cmake)
SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")
MANIFEST_SCHEMA: Mapping[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))

_ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "$defs", "description"})
_KEYWORDS = _ANNOTATIONS | {
    "$ref",
    "type",
    "const",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "items",
    "required",
    "properties",
    "additionalProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_TEXT = 40  # bytes of a string value quoted in a message


def _type_of(v: Any) -> str:
    """The JSON type name of a parsed value."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return type(v).__name__


def render(v: Any) -> str:
    """A value as a message quotes it, the same text as the C++ twin: strings in single
    quotes (first 40 bytes, control characters as '?'), numbers as written, containers by
    their type."""
    t = _type_of(v)
    if t == "string":
        raw = v.encode("utf-8", "replace")[:_MAX_TEXT]
        raw = bytes(b if 0x20 <= b != 0x7F else 0x3F for b in raw)
        more = "..." if len(v.encode("utf-8", "replace")) > _MAX_TEXT else ""
        return "'" + raw.decode("utf-8", "replace") + more + "'"
    if t == "boolean":
        return "true" if v else "false"
    if t == "null":
        return "null"
    if t == "integer":
        s = str(v) if abs(v) < 10**40 else f"{str(v)[:20]}...({len(str(abs(v)))} digits)"
        return s
    if t == "number":
        return repr(v)
    return "an array" if t == "array" else "an object" if t == "object" else t


def _num(x: Any) -> str:
    return str(x) if isinstance(x, int) else repr(float(x))


def child_path(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` (JSON-quoted) for a key that is not an identifier."""
    return f"{path}.{key}" if _IDENT.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _is_type(v: Any, t: str) -> bool:
    vt = _type_of(v)
    return vt == t or (t == "number" and vt == "integer")


@lru_cache(maxsize=64)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _search(pattern: str, v: str) -> bool:
    """re.search, but a final ``$`` matches only at the very end, as in ECMAScript (the C++
    twin's std::regex): Python's ``$`` also matches before a trailing newline."""
    m = _regex(pattern).search(v)
    return m is not None and (not pattern.endswith("$") or m.end() == len(v))


def first_error(
    value: Any, schema: Mapping[str, Any] | None = None, path: str = "manifest"
) -> tuple[str, str] | None:
    """The first error of ``value`` against ``schema`` (default: the manifest schema).

    Returns:
      None when valid, else (path of the field, message), e.g.
      ("manifest.input.pad_value", "300 > 255").
    Raises:
      ValueError: the schema uses a keyword this interpreter does not know.
    """
    root = MANIFEST_SCHEMA if schema is None else schema
    return _walk(value, root, root, path)


def _walk(v: Any, s: Mapping[str, Any], root: Mapping[str, Any], path: str) -> Any:
    unknown = set(s) - _KEYWORDS
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} not supported")
    if "$ref" in s:
        ref = s["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"schema $ref {ref!r} not supported")
        err = _walk(v, root["$defs"][ref[len("#/$defs/") :]], root, path)
        if err:
            return err
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(_is_type(v, t) for t in types):
            return path, f"expected {' or '.join(types)}, got {_type_of(v)} {render(v)}"
    t = _type_of(v)
    if t == "string":
        err = _string(v, s, path)
    elif t in ("integer", "number"):
        err = _number(v, s, path)
    elif t == "array":
        err = _array(v, s, root, path)
    elif t == "object":
        err = _object(v, s, root, path)
    else:
        err = None
    if err:
        return err
    if "const" in s and not _equal(v, s["const"]):
        return path, f"{render(v)} is not {render(s['const'])}"
    if "enum" in s and not any(_equal(v, c) for c in s["enum"]):
        return path, f"{render(v)} is not one of [{', '.join(render(c) for c in s['enum'])}]"
    return None


def _equal(a: Any, b: Any) -> bool:
    return _type_of(a) == _type_of(b) and a == b


def _string(v: str, s: Mapping[str, Any], path: str) -> Any:
    n = len(v.encode("utf-8", "surrogatepass"))  # bytes, as the C++ twin counts
    if "minLength" in s and n < s["minLength"]:
        return path, "empty string" if n == 0 else f"{n} bytes < {s['minLength']}"
    if "maxLength" in s and n > s["maxLength"]:
        return path, f"{n} bytes > {s['maxLength']}"
    if "pattern" in s and not _search(s["pattern"], v):
        if "description" in s:
            return path, f"{render(v)} is not {s['description']}"
        return path, f"{render(v)} does not match {s['pattern']}"
    return None


def _number(v: int | float, s: Mapping[str, Any], path: str) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return path, f"{render(v)} is not finite"
    if "minimum" in s and v < s["minimum"]:
        return path, f"{render(v)} < {_num(s['minimum'])}"
    if "maximum" in s and v > s["maximum"]:
        return path, f"{render(v)} > {_num(s['maximum'])}"
    return None


def _array(v: list, s: Mapping[str, Any], root: Mapping[str, Any], path: str) -> Any:
    lo, hi = s.get("minItems"), s.get("maxItems")
    if lo is not None and lo == hi and len(v) != lo:
        return path, f"expected {lo} values, got {len(v)}"
    if lo is not None and len(v) < lo:
        return path, f"{len(v)} items < {lo}"
    if hi is not None and len(v) > hi:
        return path, f"{len(v)} items > {hi}"
    if "items" in s:
        for i, item in enumerate(v):
            err = _walk(item, s["items"], root, f"{path}[{i}]")
            if err:
                return err
    return None


def _object(v: dict, s: Mapping[str, Any], root: Mapping[str, Any], path: str) -> Any:
    if "minProperties" in s and len(v) < s["minProperties"]:
        return path, "empty" if not v else f"{len(v)} keys < {s['minProperties']}"
    if "maxProperties" in s and len(v) > s["maxProperties"]:
        return path, f"{len(v)} keys > {s['maxProperties']}"
    for key in s.get("required", ()):
        if key not in v:
            return child_path(path, key), "missing"
    props = s.get("properties", {})
    for key, sub in sorted(props.items()):
        if key in v:
            err = _walk(v[key], sub, root, child_path(path, key))
            if err:
                return err
    extra = s.get("additionalProperties", True)
    names = s.get("propertyNames")
    for key, item in sorted(v.items()):
        where = child_path(path, key)
        if names is not None:
            err = _walk(key, names, root, where)
            if err:
                return where, f"key: {err[1]}"
        if key in props:
            continue
        if extra is False:
            known = ", ".join(render(k) for k in sorted(props))
            return where, f"unknown key; known [{known}]"
        if isinstance(extra, Mapping):
            err = _walk(item, extra, root, where)
            if err:
                return err
    return None
