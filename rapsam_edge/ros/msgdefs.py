"""The ROS 2 message definitions rapsam-edge writes and reads, as data (``msg/PKG/NAME.msg``).

The texts are the field lines of the standard interfaces (``sensor_msgs``, ``std_msgs``,
``builtin_interfaces``, ``geometry_msgs``, ``diagnostic_msgs`` of ROS 2 Humble / Jazzy and
``vision_msgs`` 4.1), every nested type written with its package. ``definition(name)`` joins
a type's text and its dependencies the way ``ros2 bag`` stores a schema in an MCAP file (the
``ros2msg`` schema encoding Foxglove reads): the type's own text, then per dependency a line
of 80 ``=``, ``MSG: pkg/Name`` and its text. ``fields(name)`` gives (type, name) per field,
which ``messages.check_message`` uses to refuse a message with a missing or unknown key
before a serialiser fills the gap with zeros.

Standard library only: no rclpy, no serialiser.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import NamedTuple

from ..errors import InputError

__all__ = ["MSG_DIR", "MsgField", "definition", "fields", "names", "short_name", "text"]

#: the folder of the .msg texts (package data)
MSG_DIR = Path(__file__).with_name("msg")
_SEPARATOR = "=" * 80
_PRIMITIVES = frozenset(
    (
        "bool byte char float32 float64 int8 uint8 int16 uint16 int32 uint32 int64 uint64 "
        "string wstring"
    ).split()
)
_CONSTANT = re.compile(r"^[a-z0-9]+\s+[A-Z][A-Z0-9_]*\s*=")
_FIELD = re.compile(r"^([A-Za-z0-9_/]+)(\[(<=)?\d*\])?\s+([a-z][a-z0-9_]*)(\s+.*)?$")


def short_name(name: str) -> str:
    """``sensor_msgs/msg/Image`` or ``sensor_msgs/Image`` -> ``sensor_msgs/Image``."""
    parts = name.split("/")
    if len(parts) == 3 and parts[1] == "msg":
        parts = [parts[0], parts[2]]
    if len(parts) != 2 or not all(parts):
        raise InputError(f"not a ROS 2 message type name: {name!r}")
    return "/".join(parts)


def names() -> list[str]:
    """Every type held, as ``pkg/msg/Name``."""
    return sorted(f"{p.parent.name}/msg/{p.stem}" for p in MSG_DIR.glob("*/*.msg"))


@functools.cache
def text(name: str) -> str:
    """The .msg text of one type (``pkg/Name`` or ``pkg/msg/Name``)."""
    pkg, msg = short_name(name).split("/")
    path = MSG_DIR / pkg / f"{msg}.msg"
    if not path.is_file():
        raise InputError(f"no message definition for {name!r} (have: {', '.join(names())})")
    return path.read_text(encoding="utf-8")


class MsgField(NamedTuple):
    """One field: its type (``pkg/Name`` or a primitive), its name, whether it is an array."""

    type: str
    name: str
    is_array: bool

    @property
    def is_primitive(self) -> bool:
        return self.type in _PRIMITIVES


@functools.cache
def fields(name: str) -> tuple[MsgField, ...]:
    """The fields of one type in order (constants left out)."""
    out = []
    for raw in text(name).splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if _CONSTANT.match(line):  # "byte OK=0"
            continue
        m = _FIELD.match(line)
        if m is None:
            raise InputError(f"cannot parse line {raw!r} of {name!r}")
        ftype = m.group(1)
        if ftype not in _PRIMITIVES:
            ftype = short_name(ftype)
        out.append(MsgField(ftype, m.group(4), m.group(2) is not None))
    return tuple(out)


def _dependencies(name: str) -> list[str]:
    """The nested types of ``name``, depth first, each once."""
    seen: list[str] = []

    def visit(n: str) -> None:
        for f in fields(n):
            if not f.is_primitive and f.type not in seen:
                seen.append(f.type)
                visit(f.type)

    visit(short_name(name))
    return seen


@functools.cache
def definition(name: str) -> str:
    """The full definition of ``name`` as ``ros2 bag`` writes it into an MCAP schema."""
    parts = [text(name).strip()]
    for dep in _dependencies(name):
        parts += [_SEPARATOR, f"MSG: {dep}", text(dep).strip()]
    return "\n".join(parts) + "\n"
