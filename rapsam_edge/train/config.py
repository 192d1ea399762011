"""Training configuration: one flat, JSON-serialisable dataclass (no config machinery)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from pathlib import Path

from ..errors import ConfigError


@cache
def shipped_default_variant() -> str:
    """The variant of the shipped default bundle (``assets.DEFAULT_BUNDLE``): what
    ``rapsam-edge train`` trains unless told otherwise (read from its manifest, so the two
    cannot disagree)."""
    from ..bundle import load_bundle

    return load_bundle(None, verify=False).variant


#: the student ``rapsam-edge distill`` trains unless told otherwise (``--student`` or a
#: ``--config`` naming a variant): the smallest variant, distilled from a larger teacher
DEFAULT_STUDENT = "edge-xs"

#: integer fields of TrainConfig / PretrainConfig that must be >= 1 (the others: >= 0, where
#: 0 has the meaning the field's comment names); the CLI checks them at parse time
POSITIVE_FIELDS = frozenset(
    {
        "steps",
        "batch_size",
        "image_size",
        "video_batch_size",
        "clip_length",
        "num_points",
        "checkpoint_every",
        "log_every",
        "max_things",
    }
)


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
    # multi-scale training: each batch's side drawn uniformly from image_size..this in steps
    # of 32, so one set of weights serves every network side in the range (0: image_size only)
    max_image_size: int = 0
    prompts_per_image: int = 8  # prompts sampled per image for the interactive branch
    prompt_box_fraction: float = 0.5  # share of prompts given as a box (the rest: a point)
    video_every: int = 2  # a video clip batch every k steps (0 = no video co-training)
    video_batch_size: int = 4  # clips per video batch
    clip_length: int = 2  # frames per clip
    lr: float = 1e-3  # from scratch (the reference fine-tunes pretrained weights at 1e-4)
    backbone_lr_mult: float = 1.0  # the trunk's learning rate = lr x this
    weight_decay: float = 0.05  # AdamW weight decay
    warmup_steps: int = 200  # linear learning-rate warm-up steps (0: none)
    lr_milestones: tuple[float, ...] = (0.75, 0.92)  # fractions of steps, x lr_gamma each
    lr_gamma: float = 0.1  # learning-rate factor at each milestone
    grad_clip: float = 1.0  # max gradient norm (clip_grad_norm_)
    num_points: int = 4096  # points sampled per mask for the mask losses and matching
    aux_loss: bool = True  # losses on every decoder stage, not only the last
    # training-only per-pixel class loss on F (1x1 conv head, not exported); 0 = reference
    semantic_weight: float = 2.0
    seed: int = 0  # random seed (data order, prompts, initialisation)
    workers: int = 1  # data-loader worker processes (0: load in the training process)
    threads: int = 0  # torch intra-op threads per process (0: torch's default)
    checkpoint_every: int = 200  # steps between checkpoints (last.ckpt)
    log_every: int = 10  # steps between log lines (log.jsonl)
    resume: bool = True  # continue from <out>/last.ckpt when it exists
    # else continue from this checkpoint, e.g. a committed one (default: none, start fresh)
    resume_from: str | None = None
    # start from these weights, fine-tuning (default: none, random initialisation)
    init_weights: str | None = None
    # pretrained trunk, `rapsam-edge pretrain` output (default: none, a random trunk)
    init_trunk: str | None = None
    # distillation (`rapsam-edge distill`): a trained run as frozen teacher + KD loss weights
    # a trained run to distill from, `rapsam-edge distill` (default: none, no distillation)
    teacher: str | None = None
    kd_dense_weight: float = 1.0  # per-pixel KL of the dense class maps
    kd_prompt_weight: float = 1.0  # prompt-branch masks, same prompts into both
    kd_feat_weight: float = 1.0  # F through a 1x1 adapter vs the teacher's F (0: no adapter)
    kd_object_weight: float = 0.0  # class KL of queries matched to teacher objects (0: off)
    kd_temperature: float = 2.0  # T of that KL
    # run the teacher at this side when a batch is larger (images and prompts scaled down, its
    # outputs compared on the same image extent): a single-scale teacher then teaches every
    # side of a multi-scale run (0: the batch's own side)
    kd_teacher_size: int = 0
    extra: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        """The config saved at ``path`` (``save``'s JSON).

        Raises:
          ConfigError: not JSON, not an object, or keys TrainConfig does not have.
        """
        try:
            raw = json.loads(Path(path).read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"training config {path} is not JSON: {e}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"training config {path} is not a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"unknown training config keys in {path}: {unknown}",
                hint="`rapsam-edge train --help` lists the keys (flag names with _ for -)",
            )
        if "lr_milestones" in raw:
            raw["lr_milestones"] = tuple(raw["lr_milestones"])
        return cls(**raw)


@dataclass
class PretrainConfig:
    """Flags of `rapsam-edge pretrain` (trunk pretraining on shape scenes, ``pretrain.py``)."""

    variant: str = "edge-s"  # model variant whose trunk is pretrained (model.variants)
    out: str = "runs/pretrain"  # output directory: trunk weights, checkpoints, log
    steps: int = 3000  # optimizer steps
    batch_size: int = 64  # generated scenes per step
    image_size: int = 128  # side of the square generated scenes, pixels
    # shape radius range, as fractions of image_size: 15-51 px at 128
    radius_range: tuple[float, float] = (0.12, 0.4)
    max_things: int = 4  # most shapes per generated scene
    lr: float = 2e-3  # peak learning rate (AdamW)
    weight_decay: float = 0.05  # AdamW weight decay
    warmup_steps: int = 100  # linear learning-rate warm-up steps (0: none)
    seed: int = 0  # random seed (scenes, initialisation)
    workers: int = 1  # scene-generating worker processes (0: generate in this process)
    threads: int = 0  # torch intra-op threads (0: torch's default)
    log_every: int = 20  # steps between log lines
    checkpoint_every: int = 200  # steps between checkpoints
    # a trained model (run directory): learn to reproduce its trunk features instead
    # (trunk_distill.py), starting from its same-shape trunk tensors (default: none, learn
    # dense shape classification from scratch)
    teacher: str | None = None

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
