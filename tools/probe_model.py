"""Probe a trained model on a make-data validation split (torch; the figures behind
``models/edge-xs-synthetic-train/PROVENANCE.md``, "What limits the targets").

  python tools/probe_model.py models/edge-xs-synthetic \
      --checkpoint models/edge-xs-synthetic-train/last.ckpt [--data data/synthetic] [--images 40]

The first argument holds model.safetensors + config.json (a training run or a bundle made
with --include-weights); the checkpoint (default: DIR/last.ckpt) gives the semantic head.
Prints, separately for things and stuff:
  * panoptic: per ground-truth segment, the query whose mask has the best IoU with it, and
    that query's probability of the right class / of no-object;
  * prompts: 1-click IoU (click at the distance-transform maximum) of the initial masks, each
    stage and the final output;
  * semantic head (if the checkpoint has one): per-class accuracy over the feature cells.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rapsam_edge.data.coco_panoptic import CocoPanopticDataset
from rapsam_edge.eval.prompt_iou import first_clicks
from rapsam_edge.model.io import load_model
from rapsam_edge.model.prompt_encoder import points_to_boxes


def _ious(mask_logits: torch.Tensor, size: tuple[int, int], gt: np.ndarray) -> np.ndarray:
    """1 x K x h x w logits, K x H x W ground truth -> IoU per pair (k, k)."""
    pred = F.interpolate(mask_logits, size=size, mode="bilinear")[0].numpy() > 0
    return (pred & gt).sum((1, 2)) / np.maximum((pred | gt).sum((1, 2)), 1)


def _semantic_head(ckpt: Path, num_classes: int) -> torch.nn.Conv2d | None:
    """The training-only semantic head of a checkpoint, when it has one."""
    if not ckpt.exists():
        return None
    heads = torch.load(ckpt, map_location="cpu", weights_only=True).get("heads", {})
    if "semantic.weight" not in heads:
        return None
    head = torch.nn.Conv2d(heads["semantic.weight"].shape[1], num_classes, 1)
    head.load_state_dict({k.split(".", 1)[1]: v for k, v in heads.items()})
    return head


def _probe_image(model, head, sample, is_thing, pan: list, prm: list, cells_ok, cells) -> None:
    """Appends one image's panoptic and prompt rows; counts the semantic head's right cells."""
    segs = [s for s in sample.segments if not s.iscrowd]
    gt = sample.ids[None] == np.array([s.id for s in segs])[:, None, None]
    image = torch.from_numpy(sample.image.transpose(2, 0, 1)).float()[None]
    size = sample.ids.shape
    clicks = torch.from_numpy(first_clicks(gt).astype(np.float32) + 0.5)
    with torch.no_grad():
        feats = model.encode(image)
        out = model.decode_panoptic(feats)
        prompts = model.decode_prompts(feats, points_to_boxes(clicks)[None], all_stages=True)
        sem = None if head is None else head(feats)[0].argmax(0).numpy()
    prob = out["cls_logits"][0].softmax(-1).numpy()
    masks = F.interpolate(out["mask_logits"], size=size, mode="bilinear")[0].numpy() > 0
    stages = [_ious(o["mask_logits"], size, gt) for o in [*prompts["aux"], prompts]]
    for k, s in enumerate(segs):
        iou = (masks & gt[k]).sum((1, 2)) / np.maximum((masks | gt[k]).sum((1, 2)), 1)
        q = int(iou.argmax())
        pan.append(
            (
                is_thing[s.class_id],
                iou[q],
                prob[q, s.class_id],
                prob[q, -1],
                prob[q].argmax() == s.class_id,
            )
        )
        prm.append((is_thing[s.class_id], *[st[k] for st in stages]))
    if sem is not None:
        stride = model.feat_stride
        labels = np.full(size, -1)
        for s in segs:
            labels[sample.ids == s.id] = s.class_id
        labels = labels[stride // 2 :: stride, stride // 2 :: stride]
        for c in range(len(is_thing)):
            sel = labels == c
            cells_ok[c] += (sem[: sel.shape[0], : sel.shape[1]][sel] == c).sum()
            cells[c] += sel.sum()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", type=Path, default=Path("data/synthetic"))
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--checkpoint", type=Path, help="training checkpoint (semantic head)")
    args = parser.parse_args()

    model = load_model(args.run).eval()
    data = CocoPanopticDataset(args.data / "coco", "val")
    is_thing = np.array([c.is_thing for c in data.classes])
    head = _semantic_head(args.checkpoint or args.run / "last.ckpt", len(is_thing))
    pan, prm = [], []
    cells_ok, cells = np.zeros(len(is_thing)), np.zeros(len(is_thing))
    for i in range(min(args.images, len(data))):
        _probe_image(model, head, data[i], is_thing, pan, prm, cells_ok, cells)
    pan_a, prm_a = np.array(pan, dtype=float), np.array(prm, dtype=float)
    for flag, name in ((1, "things"), (0, "stuff")):
        p = pan_a[pan_a[:, 0] == flag]
        r = prm_a[prm_a[:, 0] == flag]
        print(f"{name}: {len(p)} segments")
        print(
            f"  panoptic best-query IoU mean {p[:, 1].mean():.3f} (>0.5: {(p[:, 1] > 0.5).mean():.2f});"
            f" p(right class) {p[:, 2].mean():.3f}, p(no object) {p[:, 3].mean():.3f},"
            f" argmax right {p[:, 4].mean():.2f}"
        )
        print(
            "  prompt 1-click IoU: initial / stages / final",
            " / ".join(f"{v:.3f}" for v in r[:, 1:].mean(0)),
        )
    if cells.any():
        acc = cells_ok / np.maximum(cells, 1)
        print(
            "semantic head cell accuracy:",
            ", ".join(f"{c.name} {a:.2f}" for c, a in zip(data.classes, acc)),
        )


if __name__ == "__main__":
    main()
