"""Test helper: checkpoints shaped like the official RAP-SAM ones, written the way mmengine's
``save_checkpoint`` writes them (meta with numpy scalars and a config object, message_hub with
HistoryBuffer objects holding numpy arrays, optimizer / scheduler state, an EMA copy, DDP
``module.`` prefixes), without mmengine installed: its classes are stand-ins registered under
mmengine's module names only while pickling, so the reader meets unknown globals as it would
on a deployment machine."""

from __future__ import annotations

import collections
import sys
import types
from pathlib import Path

import numpy as np
import torch

from rapsam_edge.model.convert import _RULES, _STAGE_RULES, CLASS_EMBED_KEY


def ours_to_official(key: str) -> str:
    """Inverse of ``convert.official_to_ours`` (most specific prefix first)."""
    if key.startswith("decoder.stages."):
        _, _, i, rest = key.split(".", 3)
        for old, new in sorted(_STAGE_RULES, key=lambda r: -len(r[1])):
            if rest.startswith(new):
                return f"panoptic_head.mask_heads.{i}.{old}{rest[len(new) :]}"
    for old, new in sorted(_RULES, key=lambda r: -len(r[1])):
        if key.startswith(new):
            return old + key[len(new) :]
    raise KeyError(key)


def _stand_in(module: str, name: str) -> type:
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    cls = type(name, (), {"__module__": module})
    setattr(sys.modules[module], name, cls)
    return cls


def write_mmengine_checkpoint(model: torch.nn.Module, path: Path, *, ema_scale: float = 0.5):
    """Save ``model`` (a rapsam-r50 / -r18) as the official training run would."""
    sd = collections.OrderedDict(
        (ours_to_official(k), v.clone())
        for k, v in model.state_dict().items()
        if k != CLASS_EMBED_KEY
    )
    try:
        history = _stand_in("mmengine.logging.history_buffer", "HistoryBuffer")
        config = _stand_in("mmengine.config.config", "ConfigDict")
        hb = history()
        hb._log_history, hb._count_history, hb.max_length = np.arange(5.0), np.ones(5), 10**6
        cfg = config()
        cfg.__dict__.update(type="RapSAM", lr=np.float64(1e-4))
        ckpt = {
            "meta": {
                "epoch": 12,
                "iter": np.int64(90000),
                "seed": np.int32(1234),
                "cfg": cfg,
                "mmengine_version": "0.10.3",
                "dataset_meta": {"classes": ("person", "sky")},
            },
            "state_dict": collections.OrderedDict(("module." + k, v) for k, v in sd.items()),
            "ema_state_dict": collections.OrderedDict(
                [("steps", torch.tensor(90000))]
                + [("module." + k, v * ema_scale) for k, v in sd.items()]
            ),
            "message_hub": {"log_scalars": {"train/loss": hb}, "runtime_info": {"iter": 90000}},
            "optimizer": {
                "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(3)}},
                "param_groups": [{"lr": 1e-4, "weight_decay": 0.05, "params": [0]}],
            },
            "param_schedulers": [{"milestones": collections.Counter({8: 1, 11: 1})}],
        }
        torch.save(ckpt, path)
    finally:
        for name in [k for k in sys.modules if k == "mmengine" or k.startswith("mmengine.")]:
            del sys.modules[name]
