"""Training batches from the standard-format readers (COCO panoptic, YouTube-VIS): the same
path a user's real dataset takes. Augmentation and prompt sampling come from
``rapsam_edge.data``; this module only turns them into tensors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler

from ..data.augment import augment, augment_clip
from ..data.coco_panoptic import CocoPanopticDataset
from ..data.prompts import sample_prompts
from ..data.ytvis import YtvisDataset
from ..model.prompt_encoder import points_to_boxes
from .config import TrainConfig


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

    def __getitem__(self, index: int):
        rng = _sample_rng()
        sample = self.data[index]
        crowd = [s.id for s in sample.segments if s.iscrowd]
        ids = np.where(np.isin(sample.ids, crowd), 0, sample.ids) if crowd else sample.ids
        image, ids, _ = augment(sample.image, ids, rng, out_hw=(self.size, self.size))
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
            boxes = np.array([[0, 0, self.size, self.size]] * self.num_prompts, np.float32)
            prompt_masks = np.zeros((self.num_prompts, self.size, self.size), bool)
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

    def __getitem__(self, index: int):
        rng = _sample_rng()
        video = self.data[index]
        total = len(video.images)
        gap = int(rng.integers(1, max(2, min(4, total // max(self.length - 1, 1) + 1))))
        span = gap * (self.length - 1)
        start = int(rng.integers(0, max(total - span, 1)))
        frames = np.minimum(start + gap * np.arange(self.length), total - 1)
        ids = video.ids()[frames]
        images, ids, _ = augment_clip(video.images[frames], ids, rng, out_hw=(self.size, self.size))
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


def _loader(dataset: Dataset, batch_size: int, cfg: TrainConfig, rank: int, world: int, collate):
    if world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=cfg.seed)
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=cfg.workers,
        collate_fn=collate,
        drop_last=True,
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
        vid_loader = _loader(vid, cfg.video_batch_size, cfg, rank, world, _collate_video)
    return pan_loader, vid_loader, pan.classes
