"""Training batches from the standard-format readers (COCO panoptic, YouTube-VIS): the same
path a user's real dataset takes. Augmentation and prompt sampling come from
``rapsam_edge.data``; this module only turns them into tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    Sampler,
)

from ..data.augment import augment, augment_clip
from ..data.coco_panoptic import CocoPanopticDataset
from ..data.prompts import sample_prompts
from ..data.ytvis import YtvisDataset
from ..errors import ConfigError
from ..model.prompt_encoder import points_to_boxes
from .config import TrainConfig

#: multi-scale sides are multiples of this (the network's largest stride)
SIZE_STEP = 32


def network_side(name: str, value: object, *, zero_ok: bool) -> int:
    """``value`` as a network side: an int (not a bool) that is a positive multiple of
    ``SIZE_STEP`` (or 0 where ``zero_ok``); else ConfigError naming the flag."""
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} is {value!r}, not an integer", hint=f"pass {flag} as a number")
    if value == 0 and zero_ok:
        return 0
    from ..runtime.options import MAX_INPUT_SIZE

    if value > MAX_INPUT_SIZE:  # the runtime could not run it; a batch alone takes gigabytes
        raise ConfigError(
            f"{name} {value} is above the runtime's largest network side {MAX_INPUT_SIZE}",
            hint=f"pass {flag} <= {MAX_INPUT_SIZE}",
        )
    if value < SIZE_STEP or value % SIZE_STEP:
        zero = "0 (off) or " if zero_ok else ""
        raise ConfigError(
            f"{name} {value}: network sides are multiples of {SIZE_STEP} (its largest stride)",
            hint=f"pass {flag} as {zero}a multiple of {SIZE_STEP}, e.g. 320",
        )
    return value


def training_sides(image_size: int, max_image_size: int) -> tuple[int, ...]:
    """The square sides batches are drawn from: ``image_size`` alone, or ``image_size`` ..
    ``max_image_size`` in steps of ``SIZE_STEP`` (both ends included).

    Raises:
      ConfigError: a side that is not an integer, negative, or not a multiple of
        ``SIZE_STEP`` (the model cannot run it), or ``max_image_size`` below ``image_size``.
    """
    image_size = network_side("image_size", image_size, zero_ok=False)
    max_image_size = network_side("max_image_size", max_image_size, zero_ok=True)
    if max_image_size == 0 or max_image_size == image_size:
        return (image_size,)
    if max_image_size < image_size:
        raise ConfigError(
            f"max_image_size {max_image_size} is below image_size {image_size}",
            hint="pass --max-image-size 0 (one side) or a side >= --image-size",
        )
    return tuple(range(image_size, max_image_size + 1, SIZE_STEP))


def check_sizes(cfg: TrainConfig) -> tuple[int, ...]:
    """The run's training sides (``training_sides``) after checking every size setting,
    ``kd_teacher_size`` included, before any work: it is 0 or a multiple of ``SIZE_STEP``,
    needs a ``teacher``, and must be below the largest side (else it never applies)."""
    sides = training_sides(cfg.image_size, cfg.max_image_size)
    teacher_size = network_side("kd_teacher_size", cfg.kd_teacher_size, zero_ok=True)
    if teacher_size and not cfg.teacher:
        raise ConfigError(
            f"kd_teacher_size {teacher_size} without a teacher",
            hint="pass --teacher RUN (rapsam-edge distill), or drop --kd-teacher-size",
        )
    if teacher_size and teacher_size >= sides[-1]:
        raise ConfigError(
            f"kd_teacher_size {teacher_size} is not below the largest training side "
            f"{sides[-1]}: the teacher would never see a smaller view",
            hint="pass a side below --max-image-size (the teacher's own), or 0 (off)",
        )
    return sides


class SizedBatchSampler(Sampler):
    """Batches of ``(index, side)`` pairs: one side per batch, drawn uniformly from ``sides``
    by its own seeded generator (the same sequence on every run with the same seed)."""

    def __init__(self, batches: BatchSampler, sides: tuple[int, ...], seed: int) -> None:
        self.batches, self.sides = batches, sides
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        for batch in self.batches:
            side = int(self.sides[int(self.rng.integers(len(self.sides)))])
            yield [(index, side) for index in batch]

    def __len__(self) -> int:
        return len(self.batches)

    def set_epoch(self, epoch: int) -> None:
        """Forwarded to a DistributedSampler underneath (its shuffle depends on the epoch)."""
        inner = self.batches.sampler
        if hasattr(inner, "set_epoch"):
            inner.set_epoch(epoch)


def _index_side(item, default: int) -> tuple[int, int]:
    return (int(item[0]), int(item[1])) if isinstance(item, tuple) else (int(item), default)


@dataclass
class PanopticBatch:
    images: Tensor  # B x 3 x S x S float32 RGB in [0, 255]
    targets: list[dict[str, Tensor]]  # per image: classes G (long), masks G x S x S (float)
    prompt_boxes: Tensor  # B x P x 4 (x0, y0, x1, y1) input pixels
    prompt_masks: Tensor  # B x P x S x S float targets


@dataclass
class VideoBatch:
    clips: Tensor  # B x T x 3 x S x S
    targets: list[dict[str, Tensor]]  # classes G, masks G x (T S) x S (frames stacked in height)


def _sample_rng() -> np.random.Generator:
    # derived from torch's RNG, which DataLoader seeds per worker and per epoch
    return np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))


def _image_tensor(image: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float()


class PanopticPromptSet(Dataset):
    """COCO-panoptic images -> (image, panoptic targets, P prompts with target masks)."""

    def __init__(
        self, root: Path, split: str, *, size: int, num_prompts: int, box_fraction: float = 0.5
    ) -> None:
        if not 0.0 <= box_fraction <= 1.0:
            raise ValueError(f"prompt_box_fraction must lie in [0, 1], got {box_fraction}")
        self.data = CocoPanopticDataset(root, split)
        self.size, self.num_prompts, self.box_fraction = size, num_prompts, box_fraction
        self.classes = list(self.data.classes)
        self.num_classes = len(self.classes)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, item):
        index, size = _index_side(item, self.size)
        rng = _sample_rng()
        sample = self.data[index]
        crowd = [s.id for s in sample.segments if s.iscrowd]
        ids = np.where(np.isin(sample.ids, crowd), 0, sample.ids) if crowd else sample.ids
        image, ids, _ = augment(sample.image, ids, rng, out_hw=(size, size))
        # panoptic targets: one mask per remaining segment
        by_id = {s.id: s.class_id for s in sample.segments if not s.iscrowd}
        present = [i for i in np.unique(ids) if i in by_id]
        classes = torch.tensor([by_id[i] for i in present], dtype=torch.long)
        masks = torch.from_numpy(ids[None] == np.array(present, dtype=ids.dtype)[:, None, None])
        # prompts: a point (as a 6-pixel box) or a jittered box per sampled segment
        prompts = sample_prompts(
            ids, rng, num_prompts=self.num_prompts, box_fraction=self.box_fraction
        )
        if len(prompts.masks) == 0:  # nothing visible: one whole-image box, empty target
            boxes = np.array([[0, 0, size, size]] * self.num_prompts, np.float32)
            prompt_masks = np.zeros((self.num_prompts, size, size), bool)
        else:
            centres = prompts.points.astype(np.float32) + 0.5
            boxes = np.where(prompts.use_box[:, None], prompts.boxes, points_to_boxes(centres))
            prompt_masks = prompts.masks
        return (
            _image_tensor(image),
            {"classes": classes, "masks": masks.float()},
            torch.from_numpy(boxes.astype(np.float32)),
            torch.from_numpy(prompt_masks).float(),
        )


class VideoClipSet(Dataset):
    """YouTube-VIS videos -> clips of ``length`` frames (random start and gap) with one
    target per instance visible in the clip."""

    def __init__(self, root: Path, split: str, *, size: int, length: int) -> None:
        self.data = YtvisDataset(root, split)
        self.size, self.length = size, length

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, item):
        index, size = _index_side(item, self.size)
        rng = _sample_rng()
        video = self.data[index]
        total = len(video.images)
        gap = int(rng.integers(1, max(2, min(4, total // max(self.length - 1, 1) + 1))))
        span = gap * (self.length - 1)
        start = int(rng.integers(0, max(total - span, 1)))
        frames = np.minimum(start + gap * np.arange(self.length), total - 1)
        ids = video.ids()[frames]
        images, ids, _ = augment_clip(video.images[frames], ids, rng, out_hw=(size, size))
        present = [k for k in np.unique(ids) if k > 0]
        classes = torch.tensor([video.instances[k - 1].class_id for k in present], dtype=torch.long)
        masks = (
            ids[None] == np.array(present, dtype=ids.dtype)[:, None, None, None]
        )  # G x T x S x S
        masks = torch.from_numpy(masks).float().flatten(1, 2)  # frames stacked along height
        clip = torch.stack([_image_tensor(im) for im in images])
        return clip, {"classes": classes, "masks": masks}


def _collate_panoptic(items) -> PanopticBatch:
    images, targets, boxes, masks = zip(*items)
    return PanopticBatch(torch.stack(images), list(targets), torch.stack(boxes), torch.stack(masks))


def _collate_video(items) -> VideoBatch:
    clips, targets = zip(*items)
    return VideoBatch(torch.stack(clips), list(targets))


def _loader(
    dataset: Dataset, batch_size: int, cfg: TrainConfig, rank: int, world: int, collate, stream=0
):
    if world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=cfg.seed)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed))
    sides = training_sides(cfg.image_size, cfg.max_image_size)
    batches = SizedBatchSampler(
        BatchSampler(sampler, batch_size, drop_last=True),
        sides,
        seed=(cfg.seed * 1000 + rank) * 2 + stream,
    )
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=cfg.workers,
        collate_fn=collate,
        persistent_workers=cfg.workers > 0,
    )


def build_loaders(cfg: TrainConfig, *, rank: int = 0, world: int = 1):
    """-> (panoptic+prompt loader, video loader or None, number of classes). The dataset
    root holds ``coco/`` and (optionally) ``ytvis/`` in the make-data layout."""
    root = Path(cfg.data)
    pan = PanopticPromptSet(
        root / "coco",
        cfg.split,
        size=cfg.image_size,
        num_prompts=cfg.prompts_per_image,
        box_fraction=cfg.prompt_box_fraction,
    )
    pan_loader = _loader(pan, cfg.batch_size, cfg, rank, world, _collate_panoptic)
    vid_loader = None
    if cfg.video_every > 0 and (root / "ytvis").exists():
        vid = VideoClipSet(root / "ytvis", cfg.split, size=cfg.image_size, length=cfg.clip_length)
        vid_loader = _loader(vid, cfg.video_batch_size, cfg, rank, world, _collate_video, 1)
    return pan_loader, vid_loader, pan.classes
