"""`rapsam-edge distill`: train a student with a frozen teacher (``train.distill``) on top of
the ground-truth losses; every `train` flag applies (checkpoints, resume, torchrun / DDP).

rapsam-edge distill --teacher runs/edge-s --student edge-xs --data data/synthetic --out runs/xs-kd
torchrun --nproc_per_node 2 -m rapsam_edge.cli distill --teacher ... --student ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import ConfigError
from ..train.config import DEFAULT_STUDENT
from .train import add_arguments as add_train_arguments
from .train import config_from_args, require_inputs, train_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_train_arguments(parser)
    parser.add_argument(
        "--student",
        dest="variant",
        default=None,
        help=f"student variant, same as --variant (default: {DEFAULT_STUDENT}, unless --config "
        "names one)",
    )


def _config_names_variant(config: Path | None) -> bool:
    """True when the ``--config`` file (already checked by ``config_from_args``) sets the
    variant: then it, not ``DEFAULT_STUDENT``, is the student."""
    return bool(config) and "variant" in json.loads(Path(config).read_text())


def student_config(args: argparse.Namespace):
    """``train``'s config from the flags, with ``DEFAULT_STUDENT`` as the variant unless
    ``--student`` / ``--variant`` or the ``--config`` file names one."""
    cfg = config_from_args(args)
    if args.variant is None and not _config_names_variant(args.config):
        cfg.variant = DEFAULT_STUDENT
    return cfg


def run(args: argparse.Namespace) -> int:
    cfg = student_config(args)
    require_inputs(cfg)  # the paths first: a missing --teacher path is named as such
    if not cfg.teacher:
        raise ConfigError("distill needs a teacher", hint="pass --teacher RUN (a trained run)")
    return train_config(cfg)
