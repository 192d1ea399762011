"""`rapsam-edge train`: flags are generated from TrainConfig's fields (one source of truth).

rapsam-edge train --variant edge-xs --data data/synthetic --out runs/xs --steps 2000
torchrun --nproc_per_node 2 -m rapsam_edge.train.cli --variant edge-s ...   # DDP
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .config import TrainConfig

_SKIP = {"extra"}


def add_dataclass_flags(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One ``--flag`` per field of a flat config dataclass (default None = keep the config's)."""
    defaults = config_type()
    for f in dataclasses.fields(config_type):
        if f.name in _SKIP:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(
                flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"(default {default})",
            )
        elif isinstance(default, tuple):
            parser.add_argument(
                flag,
                type=float,
                nargs="+",
                default=None,
                help=f"(default {' '.join(map(str, default))})",
            )
        else:
            kind = type(default) if default is not None else str
            parser.add_argument(flag, type=kind, default=None, help=f"(default {default})")


def apply_flags(cfg, args: argparse.Namespace):
    """Copy the flags the user gave onto ``cfg`` (a config dataclass instance)."""
    for f in dataclasses.fields(cfg):
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(cfg, f.name, tuple(value) if isinstance(value, list) else value)
    return cfg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="JSON TrainConfig; flags override it")
    add_dataclass_flags(parser, TrainConfig)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = TrainConfig.load(args.config) if args.config else TrainConfig()
    return apply_flags(cfg, args)


def run(args: argparse.Namespace) -> int:
    from .trainer import train

    cfg = config_from_args(args)
    train(cfg)
    print(f"weights and logs in {cfg.out}")
    return 0


if __name__ == "__main__":  # torchrun entry: python -m rapsam_edge.train.cli
    p = argparse.ArgumentParser(prog="rapsam-edge train")
    add_arguments(p)
    sys.exit(run(p.parse_args()))
