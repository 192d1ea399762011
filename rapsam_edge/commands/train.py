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

from ..train.config import TrainConfig

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


def add_dataclass_flags(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One ``--flag`` per field of a flat config dataclass (default None = keep the config's);
    the help is the field's comment (or its name) and the config's default."""
    defaults = config_type()
    comments = field_comments(config_type)
    for f in dataclasses.fields(config_type):
        if f.name in _SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        what = comments.get(f.name, f"{config_type.__name__}.{f.name}").replace("%", "%%")
        help_text = f"{what} (default {_shown(default)})"
        if isinstance(default, bool):
            action = argparse.BooleanOptionalAction
            parser.add_argument(flag, action=action, default=None, help=help_text)
        elif isinstance(default, tuple):
            parser.add_argument(flag, type=float, nargs="+", default=None, help=help_text)
        else:
            kind = type(default) if default is not None else str
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
    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    return apply_flags(cfg, args)


def run(args: argparse.Namespace) -> int:
    from ..train.trainer import train

    cfg = config_from_args(args)
    train(cfg)
    print(f"weights and logs in {cfg.out}")
    return 0
