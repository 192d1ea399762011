"""Training configuration: one flat, JSON-serialisable dataclass (no config machinery)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path


@cache
def shipped_default_variant() -> str:
    """The variant of the shipped default bundle (``assets.DEFAULT_BUNDLE``): what
    ``rapsam-edge train`` trains unless told otherwise (read from its manifest, so the two
    cannot disagree)."""
    from ..bundle import load_bundle

    return load_bundle(None, verify=False).variant


@dataclass
class TrainConfig:
    # model variant (model.variants.VARIANTS), by default the shipped default model's
    variant: str = field(default_factory=shipped_default_variant)
    data: str = "data/synthetic"  # dataset root with coco/ and ytvis/ (make-data layout)
    split: str = "train"  # dataset split to train on
    out: str = "runs/train"  # run directory: weights, checkpoints, logs
    steps: int = 2000  # optimizer steps
    batch_size: int = 8  # images per step (per process)
    image_size: int = 320  # square training crops
    prompts_per_image: int = 8  # prompts sampled per image for the interactive branch
    prompt_box_fraction: float = 0.5  # share of prompts given as a box (the rest: a point)
    video_every: int = 2  # a video clip batch every k steps (0 = no video co-training)
    video_batch_size: int = 4  # clips per video batch
    clip_length: int = 2  # frames per clip
    lr: float = 1e-3  # from scratch (the reference fine-tunes pretrained weights at 1e-4)
    backbone_lr_mult: float = 1.0  # the trunk's learning rate = lr x this
    weight_decay: float = 0.05  # AdamW weight decay
    warmup_steps: int = 200  # linear learning-rate warm-up
    lr_milestones: tuple[float, ...] = (0.75, 0.92)  # fractions of steps, x lr_gamma each
    lr_gamma: float = 0.1  # learning-rate factor at each milestone
    grad_clip: float = 1.0  # max gradient norm (clip_grad_norm_)
    num_points: int = 4096  # points sampled per mask for the mask losses and matching
    aux_loss: bool = True  # losses on every decoder stage, not only the last
    # training-only per-pixel class loss on F (1x1 conv head, not exported); 0 = reference
    semantic_weight: float = 2.0
    seed: int = 0  # random seed (data order, prompts, initialisation)
    workers: int = 1  # data-loader worker processes
    threads: int = 0  # torch intra-op threads per process (0 = torch default)
    checkpoint_every: int = 200  # steps between checkpoints (last.ckpt)
    log_every: int = 10  # steps between log lines (log.jsonl)
    resume: bool = True  # continue from <out>/last.ckpt when it exists
    resume_from: str | None = None  # else continue from this checkpoint (e.g. a committed one)
    init_weights: str | None = None  # start from these weights (fine-tuning)
    init_trunk: str | None = None  # pretrained trunk (`rapsam-edge pretrain` output)
    # distillation (`rapsam-edge distill`): a trained run as frozen teacher + KD loss weights
    teacher: str | None = None  # a trained run to distill from (`rapsam-edge distill`)
    kd_dense_weight: float = 1.0  # per-pixel KL of the dense class maps
    kd_prompt_weight: float = 1.0  # prompt-branch masks, same prompts into both
    kd_feat_weight: float = 1.0  # F through a 1x1 adapter vs the teacher's F (0: no adapter)
    kd_object_weight: float = 0.0  # class KL of student queries matched to teacher objects
    kd_temperature: float = 2.0  # T of that KL
    extra: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        raw = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"unknown training config keys in {path}: {unknown}")
        if "lr_milestones" in raw:
            raw["lr_milestones"] = tuple(raw["lr_milestones"])
        return cls(**raw)


@dataclass
class PretrainConfig:
    """Flags of `rapsam-edge pretrain` (trunk pretraining on shape scenes, ``pretrain.py``)."""

    variant: str = "edge-s"
    out: str = "runs/pretrain"
    steps: int = 3000
    batch_size: int = 64
    image_size: int = 128
    radius_range: tuple[float, float] = (0.12, 0.4)  # x image_size: 15-51 px at 128
    max_things: int = 4
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    seed: int = 0
    workers: int = 1
    threads: int = 0
    log_every: int = 20
    checkpoint_every: int = 200
    # a trained model (run directory): learn to reproduce its trunk features instead
    # (trunk_distill.py); its same-shape trunk tensors are the starting point
    teacher: str | None = None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
