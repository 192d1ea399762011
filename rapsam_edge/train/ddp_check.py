"""Self-check of distributed training: run ``world`` local gloo processes for a few steps and
compare the weights every rank ends with (they must be identical, buffers included)."""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import torch

from . import distributed
from .config import TrainConfig
from .trainer import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, cfg: TrainConfig, result_dir: str) -> None:
    from safetensors.torch import save_file

    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        WORLD_SIZE=str(world),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
    )
    model = train(cfg)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(Path(result_dir) / f"rank{rank}.safetensors"))
    distributed.cleanup()


def ddp_rank_weights(cfg: TrainConfig, world: int = 2) -> list[dict[str, torch.Tensor]]:
    """Train ``cfg`` on ``world`` local CPU processes (gloo) and return each rank's final
    state dict, rank order."""
    from safetensors.torch import load_file

    with tempfile.TemporaryDirectory() as tmp:
        torch.multiprocessing.spawn(_worker, args=(world, _free_port(), cfg, tmp), nprocs=world)
        return [load_file(str(Path(tmp) / f"rank{r}.safetensors")) for r in range(world)]
