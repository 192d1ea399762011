"""`rapsam-edge distill`: train a student with a frozen teacher (``train.distill``) on top of
the ground-truth losses; every `train` flag applies (checkpoints, resume, torchrun / DDP).

rapsam-edge distill --teacher runs/edge-s --student edge-xs --data data/synthetic --out runs/xs-kd
torchrun --nproc_per_node 2 -m rapsam_edge.cli distill --teacher ... --student ...
"""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from .train import add_arguments as add_train_arguments
from .train import config_from_args, require_inputs
from .train import run as train_run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser)
    parser.add_argument(
        "--student",
        dest="variant",
        default=None,
        help="student variant, same as --variant (default: as for train, the shipped default model's variant)",
    )


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    require_inputs(cfg)  # the paths first: a missing --teacher path is named as such
    if not cfg.teacher:
        raise ConfigError("distill needs a teacher", hint="pass --teacher RUN (a trained run)")
    return train_run(args)
