"""Trunk pretraining on generated shape scenes: dense shape classification at small resolution.

Why (issue 13): the generated thing classes differ only in outline, and a trunk trained from
scratch inside the full panoptic model on 2 cores learns texture (stuff) but not outline
(semantic-head accuracy on thing cells 0.01-0.67). Small scenes (128 x 128 by default, objects at
the same *pixel* radius as in 320-px training, 15-51 px) cost a few milliseconds to generate and
train the trunk alone at hundreds of images per second, so the trunk sees far more outlines per
CPU-hour than inside the full model. No ImageNet weights are involved (none can be downloaded).

Objective per scene (both heads are training-only and discarded):
  * dense: per-cell class (12 classes) at stride 8 from a tiny FPN over C3..C5 (cross-entropy,
    cells on segment borders / void ignored) -- the per-pixel evidence RAP-SAM's mask pooling of
    F needs to name a segment;
  * presence: which of the 8 thing classes occur (binary cross-entropy from pooled C5).

With ``--teacher DIR`` (a trained model) the objective is instead to reproduce that model's
trunk features C2..C5 (``trunk_distill.py``): the trunk starts from the teacher's tensors of the
same shape, the heads train on detached features only (a probe: their cell accuracy is logged,
their loss does not reach the trunk), and ``model.safetensors`` + ``config.json`` (the teacher's
neck and decoders on the new trunk) are written too, for ``rapsam-edge train --init-weights``.

Output directory: ``trunk.safetensors`` (the backbone's state dict, keys as in ``model.backbone``),
``pretrain_config.json`` (variant, backbone, width, flags), ``log.jsonl`` and ``last.ckpt``
(trunk + heads + optimizer, tensors only, for resume). Use it with
``rapsam-edge train --init-trunk DIR``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor, nn

from ..data.classes import CLASSES, THING_IDS
from ..data.scenes import SceneConfig, generate_scene
from ..errors import ConfigError
from ..model.rapsam import IMAGENET_MEAN, IMAGENET_STD
from ..model.variants import BACKBONES, VARIANTS
from .config import PretrainConfig

__all__ = ["PretrainConfig", "ShapeScenes", "load_trunk", "pretrain"]

TRUNK_NAME = "trunk.safetensors"
CONFIG_NAME = "pretrain_config.json"
IGNORE = 255
_STRIDE = 8


class ShapeScenes(torch.utils.data.IterableDataset):
    """Endless small generated scenes -> (3 x S x S float32 normalised image,
    S/8 x S/8 int64 cell classes (255 = ignore), 8 float32 thing presence flags).

    Deterministic per (seed, worker); scene generator: ``data.scenes.generate_scene``."""

    def __init__(self, *, size: int, radius_range: tuple[float, float], max_things: int, seed: int):
        super().__init__()
        self.size = size
        self.seed = seed
        self.scene_config = SceneConfig(
            radius_range=tuple(radius_range), min_things=1, max_things=max_things
        )
        self.mean = np.array(IMAGENET_MEAN, dtype=np.float32)
        self.std = np.array(IMAGENET_STD, dtype=np.float32)

    def sample(self, rng: np.random.Generator) -> tuple[Tensor, Tensor, Tensor]:
        scene = generate_scene(rng, size=(self.size, self.size), config=self.scene_config)
        cls_of = np.full(int(scene.ids.max()) + 1, IGNORE, dtype=np.int64)
        for s in scene.segments:
            cls_of[s.id] = s.class_id
        cls_map = cls_of[scene.ids]
        h = self.size // _STRIDE
        cells = cls_map.reshape(h, _STRIDE, h, _STRIDE)
        centre = cells[:, _STRIDE // 2, :, _STRIDE // 2]
        # a cell is labelled only when most of it has the centre's class (no border cells)
        agree = (cells == centre[:, None, :, None]).mean(axis=(1, 3))
        target = np.where(agree >= 0.75, centre, IGNORE)
        presence = np.zeros(len(THING_IDS), dtype=np.float32)
        for s in scene.segments:
            if s.is_thing:
                presence[THING_IDS.index(s.class_id)] = 1.0
        image = (scene.image.astype(np.float32) - self.mean) / self.std
        return (
            torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            torch.from_numpy(target),
            torch.from_numpy(presence),
        )

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, worker])
        while True:
            yield self.sample(rng)


class PretrainHeads(nn.Module):
    """Training-only heads over [C3, C4, C5]: a 1x1 FPN-sum to stride 8 -> per-cell classes,
    and pooled C5 -> thing presence."""

    def __init__(self, channels: tuple[int, int, int], *, dim: int = 96) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, dim, 1) for c in channels)
        self.dense = nn.Sequential(
            nn.Conv2d(dim, dim, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, len(CLASSES), 1),
        )
        self.presence = nn.Linear(channels[-1], len(THING_IDS))

    def forward(self, feats: list[Tensor]) -> tuple[Tensor, Tensor]:
        c3, c4, c5 = feats
        x = self.lateral[0](c3)
        for conv, f in zip(self.lateral[1:], (c4, c5)):
            x = x + F.interpolate(conv(f), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.dense(x), self.presence(c5.mean(dim=(2, 3)))


def build_trunk(variant: str) -> nn.Module:
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; known: {sorted(VARIANTS)}")
    v = VARIANTS[variant]
    trunk = BACKBONES[v.backbone](**{**v.trunk_kwargs(), "frozen_bn": False})
    return trunk


def _lr_lambda(cfg: PretrainConfig):
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return f


class _CellAccuracy:
    """Running per-cell accuracy of the dense head (all labelled cells, and thing cells) over
    one logging interval."""

    def __init__(self) -> None:
        self.thing_ids = torch.tensor(THING_IDS)
        self.reset()

    def reset(self) -> None:
        self.correct = self.labelled = self.thing_correct = self.thing_labelled = 0

    @torch.no_grad()
    def update(self, dense: Tensor, target: Tensor) -> None:
        pred = dense.argmax(1)
        valid = target != IGNORE
        self.correct += int((pred == target)[valid].sum())
        self.labelled += int(valid.sum())
        is_thing = torch.isin(target, self.thing_ids)
        self.thing_correct += int((pred == target)[is_thing].sum())
        self.thing_labelled += int(is_thing.sum())

    def summary(self) -> dict:
        return {
            "cell_acc": round(self.correct / max(1, self.labelled), 4),
            "thing_cell_acc": round(self.thing_correct / max(1, self.thing_labelled), 4),
        }


class _Run:
    """One pretraining run's state: trunk, heads, optimizer, the optional teacher pieces."""

    def __init__(self, cfg: PretrainConfig, out: Path) -> None:
        self.cfg = cfg
        self.out = out
        self.ckpt = out / "last.ckpt"
        torch.manual_seed(cfg.seed)
        self.trunk = build_trunk(cfg.variant)
        self.heads = PretrainHeads(tuple(self.trunk.out_channels[1:]))
        self.feature_kd = self.grafted = None
        if cfg.teacher:
            self._attach_teacher()
        self.params = list(self.trunk.parameters()) + list(self.heads.parameters())
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, _lr_lambda(cfg))

    def _attach_teacher(self) -> None:
        from .distill import load_teacher
        from .trunk_distill import TrunkFeatureKD, copy_teacher_trunk, graft

        cfg = self.cfg
        teacher = load_teacher(cfg.teacher)
        self.grafted = graft(teacher, cfg.variant)  # before any training, not at the first save
        teacher_trunk, fresh = copy_teacher_trunk(teacher, self.trunk)
        self.feature_kd = TrunkFeatureKD(teacher_trunk)
        params_fresh = sum(1 for name, _ in self.trunk.named_parameters() if name in fresh)
        print(f"teacher {cfg.teacher}: {params_fresh} new trunk parameter tensors")

    def resume(self) -> int:
        """Load ``last.ckpt`` when there is one; returns the step to start from."""
        if not self.ckpt.exists():
            return 0
        from ..model.checkpoint import read_checkpoint

        state = read_checkpoint(self.ckpt)  # sizes checked first, nothing executed
        if state.get("teacher") != self.cfg.teacher:
            raise ConfigError(
                f"{self.ckpt} was written with teacher {state.get('teacher')!r}, this run has "
                f"{self.cfg.teacher!r}",
                hint="use a new --out directory, or the run's own --teacher",
            )
        self.trunk.load_state_dict(state["trunk"])
        self.heads.load_state_dict(state["heads"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        return int(state["step"])

    def loader(self, start: int) -> torch.utils.data.DataLoader:
        cfg = self.cfg
        data = ShapeScenes(
            size=cfg.image_size,
            radius_range=cfg.radius_range,
            max_things=cfg.max_things,
            seed=cfg.seed * 100_003 + start,
        )
        return torch.utils.data.DataLoader(
            data,
            batch_size=cfg.batch_size,
            num_workers=cfg.workers,
            persistent_workers=cfg.workers > 0,
        )

    def step(self, images: Tensor, target: Tensor, presence: Tensor) -> tuple[Tensor, ...]:
        """One optimizer step; returns (loss, dense loss, presence loss, dense logits)."""
        all_feats = self.trunk(images)
        feats = all_feats[1:]
        if self.feature_kd is not None:
            # the heads still train, on detached features: their cell accuracy is a probe of
            # the distilled trunk; only the feature loss reaches the trunk
            feats = [f.detach() for f in feats]
        dense, pres_logits = self.heads(feats)
        loss_dense = F.cross_entropy(dense, target, ignore_index=IGNORE)
        loss_presence = F.binary_cross_entropy_with_logits(pres_logits, presence)
        loss = loss_dense + loss_presence
        if self.feature_kd is not None:
            loss = loss + self.feature_kd.loss(images, all_feats)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.scheduler.step()
        return loss, loss_dense, loss_presence, dense

    def save(self, done: int) -> None:
        """Write ``last.ckpt``, ``trunk.safetensors`` and, with a teacher, the grafted model."""
        torch.save(
            {
                "step": done,
                "teacher": self.cfg.teacher,
                "trunk": self.trunk.state_dict(),
                "heads": self.heads.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
            },
            self.ckpt,
        )
        save_file(
            {k: v.contiguous() for k, v in self.trunk.state_dict().items()},
            self.out / TRUNK_NAME,
            metadata={"variant": self.cfg.variant},
        )
        if self.grafted is not None:
            from .trunk_distill import save_grafted

            save_grafted(self.grafted, self.trunk, self.out)


def pretrain(cfg: PretrainConfig) -> dict:
    """Run the pretraining described in the module docstring; returns the last log record."""
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    if cfg.image_size % 32:
        raise ConfigError(f"--image-size must be a multiple of 32, got {cfg.image_size}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / CONFIG_NAME)
    run = _Run(cfg, out)
    start = run.resume()
    loader = run.loader(start)
    from tqdm import tqdm

    log = (out / "log.jsonl").open("a" if start else "w")
    bar = tqdm(total=cfg.steps, initial=start, unit="step", dynamic_ncols=True)
    run.trunk.train()
    run.heads.train()
    it = iter(loader)
    record: dict = {}
    t_last, seen = time.perf_counter(), 0
    accuracy = _CellAccuracy()
    for step in range(start, cfg.steps):
        images, target, presence = next(it)
        loss, loss_dense, loss_presence, dense = run.step(images, target, presence)
        accuracy.update(dense, target)
        seen += images.shape[0]
        done = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if done % cfg.log_every == 0 or done == cfg.steps:
            now = time.perf_counter()
            record = {
                "step": done,
                "loss": round(loss.item(), 5),
                "loss_dense": round(loss_dense.item(), 5),
                "loss_presence": round(loss_presence.item(), 5),
                **accuracy.summary(),
                "lr": run.scheduler.get_last_lr()[0],
                "images_per_s": round(seen / (now - t_last), 2),
            }
            if run.feature_kd is not None:
                record.update(run.feature_kd.stats())
            log.write(json.dumps(record) + "\n")
            log.flush()
            t_last, seen = now, 0
            accuracy.reset()
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            run.save(done)
    bar.close()
    log.close()
    return record


def load_trunk(model: nn.Module, path: str | Path) -> None:
    """Copy pretrained trunk weights (a ``pretrain`` output directory or its
    ``trunk.safetensors``) into ``model.backbone``.

    Raises:
      ConfigError: the file is missing or its tensors do not fit the model's trunk (a
        different backbone or width)."""
    path = Path(path)
    file = path / TRUNK_NAME if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"no pretrained trunk at {file}", hint="run `rapsam-edge pretrain`")
    from ..contract.limits import MAX_CHECKPOINT_BYTES
    from ..model.safe_read import read_safetensors

    state = read_safetensors(file, "pretrained trunk", ConfigError, max_bytes=MAX_CHECKPOINT_BYTES)
    own = model.backbone.state_dict()
    bad = sorted(k for k in own if k not in state or state[k].shape != own[k].shape)
    if bad:
        raise ConfigError(
            f"{file} does not fit this model's trunk ({len(bad)} tensors differ, e.g. {bad[0]})",
            hint="pretrain the same variant",
        )
    model.backbone.load_state_dict({k: state[k] for k in own})
