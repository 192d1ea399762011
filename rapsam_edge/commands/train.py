"""`rapsam-edge train`: flags are generated from TrainConfig's fields (one source of truth).

rapsam-edge train --variant edge-s --data data/synthetic --out runs/s --steps 2000
torchrun --nproc_per_node 2 -m rapsam_edge.cli train --variant edge-s ...   # DDP
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
from pathlib import Path

from ..apps.checks import finite_float, nonneg_int, positive_int, require
from ..train.config import POSITIVE_FIELDS, TrainConfig

_SKIP = {"extra"}


def _shown(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def field_comments(config_type: type) -> dict[str, str]:
    """field -> the comment on its line, or the comment lines right above it, in the
    dataclass's source (the fields' one documentation), for those that have one."""
    try:
        source = inspect.getsource(config_type)
    except (OSError, TypeError):  # no source (a frozen build): names and defaults only
        return {}
    out: dict[str, str] = {}
    above: list[str] = []  # the comment lines right above the current line
    for line in source.splitlines():
        field = re.match(r"^\s+(\w+): [^#]*(?:#\s*(.+))?$", line)
        text = field and (field.group(2) or " ".join(above))
        if text:
            out[field.group(1)] = text.strip()
        above = [*above, line.strip()[1:].strip()] if line.strip().startswith("#") else []
    return out


def _value_type(name: str, default):
    """argparse type of a field: ints >= 1 (``POSITIVE_FIELDS``) or >= 0, finite floats."""
    if isinstance(default, int):
        return positive_int if name in POSITIVE_FIELDS else nonneg_int
    if isinstance(default, float):
        return finite_float
    return str


def add_dataclass_flags(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One ``--flag`` per field of a flat config dataclass (default None = keep the config's);
    the help is the field's comment and the config's default (a field whose default is None
    says what None means in its comment: "default: ..."). Integers are checked at parse time:
    >= 1 for ``POSITIVE_FIELDS``, else >= 0; floats must be finite."""
    defaults = config_type()
    comments = field_comments(config_type)
    for f in dataclasses.fields(config_type):
        if f.name in _SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        what = comments.get(f.name, f"the {f.name.replace('_', ' ')} setting").replace("%", "%%")
        help_text = what if default is None else f"{what} (default {_shown(default)})"
        if isinstance(default, bool):
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=None, help=help_text)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=finite_float, nargs="+", default=None, help=help_text)
        else:
            kind = _value_type(f.name, default)
            parser.add_argument(flag, type=kind, default=None, help=help_text)


def apply_flags(cfg, args: argparse.Namespace):
    """Copy the flags the user gave onto ``cfg`` (a config dataclass instance)."""
    for f in dataclasses.fields(cfg):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(cfg, f.name, tuple(value) if isinstance(value, list) else value)
    return cfg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="JSON TrainConfig; flags override it (default: none)"
    )
    add_dataclass_flags(parser, TrainConfig)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    require(args.config, "--config", "file")
    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    return apply_flags(cfg, args)


def require_inputs(cfg) -> None:
    """Check the input paths of a train / pretrain config up front (before torch loads):
    ``data`` a directory; ``init_weights``, ``init_trunk``, ``resume_from``, ``teacher``
    existing paths when set."""
    if hasattr(cfg, "data"):
        require(cfg.data, "--data", "dir")
    for name in ("init_weights", "init_trunk", "resume_from", "teacher"):
        require(getattr(cfg, name, None), "--" + name.replace("_", "-"))


def run(args: argparse.Namespace) -> int:
    return train_config(config_from_args(args))


def train_config(cfg: TrainConfig) -> int:
    """Check ``cfg``'s input paths, then train it (``train.trainer.train``)."""
    require_inputs(cfg)
    from ..train.trainer import train

    train(cfg)
    print(f"weights and logs in {cfg.out}")
    return 0
