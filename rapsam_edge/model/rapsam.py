"""RAP-SAM top-level module and its forward contract (used by the trainer and the exporter).

Inputs are float32 RGB images B x 3 x H x W with values in [0, 255]; H and W are multiples of
``pad_divisor``. Normalisation (ImageNet mean/std in 0..255 units) happens inside the model.

Entry points:
  encode(images)                     -> feats B x D x H/s x W/s
  decode_panoptic(feats)             -> cls_logits, mask_logits, query_embed
  decode_prompts(feats, boxes)       -> mask_logits, iou
  forward(images)                    =  decode_panoptic(encode(images))
  forward_clip(clip)                 -> clip-level (frames stacked along height) outputs
  track_step(images)                 =  forward(images); online video mode

Video: the reference processes clips (``forward_clip``): the T frame feature maps are
concatenated along height so one set of queries (and one mask-pooled feature per query) is
shared across the clip. The online mode used on a robot is simply ``decode_panoptic`` per frame;
the returned ``query_embed`` (object-adapter output queries) is what the tracker associates
across frames (cosine similarity + linear assignment), so ``track_step`` is ``forward``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .mask_decoder import MaskDecoder
from .neck import LiteDeformFPN
from .prompt_encoder import PromptEncoder

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "RapSam"]

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


class RapSam(nn.Module):
    def __init__(
        self,
        *,
        backbone: nn.Module,
        neck: LiteDeformFPN,
        decoder: MaskDecoder,
        prompt_encoder: PromptEncoder,
        backbone_levels: Sequence[int],
        pad_divisor: int = 32,
        input_size: int = 640,
        pixel_mean: Sequence[float] = IMAGENET_MEAN,
        pixel_std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        """
        Arguments:
          backbone: returns [C2, C3, C4, C5]. backbone_levels: the levels (2..5) fed to the
            neck, finest first; the feature stride is 2 ** backbone_levels[0].
          input_size: default long side of the network input. pad_divisor: H, W multiple.
        """
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.decoder = decoder
        self.prompt_encoder = prompt_encoder
        self.backbone_levels = tuple(backbone_levels)
        self.feat_stride = 2 ** self.backbone_levels[0]
        self.pad_divisor = pad_divisor
        self.input_size = input_size
        self.register_buffer(
            "pixel_mean", torch.tensor(pixel_mean).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(pixel_std).view(1, 3, 1, 1), persistent=False
        )

    @property
    def num_queries(self) -> int:
        return self.decoder.queries.num_embeddings

    @property
    def num_classes(self) -> int:
        return self.decoder.num_classes

    def encode(self, images: Tensor) -> Tensor:
        """images: B x 3 x H x W float RGB in [0, 255] -> feats B x D x H/s x W/s."""
        x = (images - self.pixel_mean) / self.pixel_std
        levels = self.backbone(x)
        return self.neck([levels[lvl - 2] for lvl in self.backbone_levels])

    def decode_panoptic(self, feats: Tensor, *, all_stages: bool = False) -> dict:
        """feats: B x D x h x w -> dict:
        cls_logits:  B x N x (C + 1), last column = no object.
        mask_logits: B x N x h x w (stride s of the padded input).
        query_embed: B x N x D, object-adapter queries (video association).
        aux (all_stages=True): list over decoder stages (before the adapter) of dicts with
          cls_logits B x N x (C + 1) and mask_logits B x N x h x w.
        """
        return self.decoder.panoptic(feats, all_stages=all_stages)

    def padded_input_size(self, feats: Tensor) -> Tensor:
        """feats: B x D x h x w -> (2,) tensor (W_pad, H_pad) = (w, h) * stride (traceable)."""
        h, w = feats.shape[-2:]
        # new_full keeps h and w symbolic under jit.trace and torch.export.
        wh = torch.stack((feats.new_full((), w), feats.new_full((), h)))
        return wh * float(self.feat_stride)

    def decode_prompts(self, feats: Tensor, boxes: Tensor, *, all_stages: bool = False) -> dict:
        """feats: B x D x h x w; boxes: B x P x 4 (x0, y0, x1, y1) in pixels of the padded
        network input (points: use ``points_to_boxes``). Boxes are normalised by the padded
        input size (w * s, h * s) derived from ``feats``. Any P >= 1. -> dict:
          mask_logits: B x P x h x w.
          iou:         B x P predicted mask quality.
          aux (all_stages=True): the initial masks (mask_logits), then one dict per decoder
            stage (mask_logits, iou).
        """
        queries = self.prompt_encoder(boxes, self.padded_input_size(feats))
        return self.decoder.prompts(feats, queries, all_stages=all_stages)

    def forward(self, images: Tensor) -> dict:
        """images: B x 3 x H x W in [0, 255] -> ``decode_panoptic(encode(images))``."""
        return self.decode_panoptic(self.encode(images))

    def track_step(self, images: Tensor) -> dict:
        """Online video step: same as ``forward``; associate tracks with ``query_embed``."""
        return self.forward(images)

    def forward_clip(self, clip: Tensor, *, all_stages: bool = False) -> dict:
        """clip: B x T x 3 x H x W -> dict:
          cls_logits:  B x N x (C + 1), one class per clip-level query.
          mask_logits: B x N x T x h x w.
          query_embed: B x N x D.
          aux (all_stages=True): per-stage cls_logits and mask_logits (B x N x T x h x w).
        The T frame feature maps are stacked along height (B x D x T*h x w), so one set of
        queries is shared across the clip.
        """
        b, t = clip.shape[:2]
        feats = self.encode(clip.flatten(0, 1))
        _, d, h, w = feats.shape
        feats = feats.view(b, t, d, h, w).transpose(1, 2).reshape(b, d, t * h, w)
        out = self.decode_panoptic(feats, all_stages=all_stages)
        out["mask_logits"] = out["mask_logits"].unflatten(2, (t, h))
        for a in out.get("aux", []):
            a["mask_logits"] = a["mask_logits"].unflatten(2, (t, h))
        return out
