"""`rapsam-edge pretrain`: trunk pretraining on generated shape scenes (``train.pretrain``).

rapsam-edge pretrain --variant edge-s --out runs/pretrain-edge-s --steps 3000
rapsam-edge train --variant edge-s --init-trunk runs/pretrain-edge-s ...
"""

from __future__ import annotations

import argparse

from ..train.config import PretrainConfig
from .train import add_dataclass_flags, apply_flags, require_inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_dataclass_flags(parser, PretrainConfig)


def run(args: argparse.Namespace) -> int:
    cfg = apply_flags(PretrainConfig(), args)
    require_inputs(cfg)
    from ..train.pretrain import pretrain

    record = pretrain(cfg)
    print(f"trunk weights and log in {cfg.out}: {record}")
    return 0
