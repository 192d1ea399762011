"""Export wrappers: the three deploy graphs as small ``nn.Module``s around one ``RapSam``.

Graph split (the expensive part runs once per frame):

* ``encoder``: ``image`` uint8 B x H x W x 3 (RGB, letterboxed, H and W multiples of 32)
  -> ``feats`` float32 B x D x H/s x W/s. The wrapper casts to float and permutes to NCHW;
  the model normalises (mean/std in 0..255 units), so the host feeds frames as they are.
* ``panoptic_decoder``: ``feats`` -> ``cls_logits`` B x N x (C + 1), ``mask_logits``
  B x N x h x w, ``query_embed`` B x N x D.
* ``prompt_decoder``: ``feats``, ``boxes`` float32 B x P x 4 (x0, y0, x1, y1 in pixels of the
  padded network input) -> ``mask_logits`` B x P x h x w, ``iou`` B x P.

The graphs' names, tensor roles and symbolic shapes are the torch-free contract's
(``rapsam_edge.contract.graphs.GRAPH_IO``); the exporter and the bundle writer both read it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..contract.graphs import (
    ENCODER,
    GRAPH_IO,
    GRAPH_NAMES,
    PANOPTIC_DECODER,
    PROMPT_DECODER,
    concrete_io,
)
from ..model.rapsam import RapSam

__all__ = [
    "GRAPHS",
    "GRAPH_IO",
    "EncoderGraph",
    "PanopticDecoderGraph",
    "PromptDecoderGraph",
    "example_inputs",
    "graph_spec",
    "make_graph",
]


GRAPHS: tuple[str, ...] = GRAPH_NAMES


def graph_spec(model: RapSam, graph: str) -> dict[str, list[dict]]:
    """The manifest entry of ``graph``'s tensors for ``model`` (``contract.concrete_io``)."""
    return concrete_io(
        graph,
        feat_dim=model.decoder.queries.embedding_dim,
        num_queries=model.num_queries,
        num_classes=model.num_classes,
        feat_stride=model.feat_stride,
    )


class EncoderGraph(nn.Module):
    """image uint8 B x H x W x 3 (RGB) -> feats float32 B x D x H/s x W/s."""

    def __init__(self, model: RapSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        # Cast first: TensorRT accepts uint8 only as a network input feeding a cast.
        x = image.to(torch.float32).permute(0, 3, 1, 2)
        return self.model.encode(x)


class PanopticDecoderGraph(nn.Module):
    """feats B x D x h x w -> (cls_logits B x N x C+1, mask_logits B x N x h x w,
    query_embed B x N x D)."""

    def __init__(self, model: RapSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.model.decode_panoptic(feats)
        return out["cls_logits"], out["mask_logits"], out["query_embed"]


class PromptDecoderGraph(nn.Module):
    """feats B x D x h x w, boxes B x P x 4 -> (mask_logits B x P x h x w, iou B x P)."""

    def __init__(self, model: RapSam) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
        out = self.model.decode_prompts(feats, boxes)
        return out["mask_logits"], out["iou"]


_WRAPPERS: dict[str, type[nn.Module]] = {
    ENCODER: EncoderGraph,
    PANOPTIC_DECODER: PanopticDecoderGraph,
    PROMPT_DECODER: PromptDecoderGraph,
}


def make_graph(model: RapSam, graph: str) -> nn.Module:
    """The export wrapper of ``graph`` around ``model`` (eval mode)."""
    if graph not in _WRAPPERS:
        raise KeyError(f"unknown graph {graph!r}; known: {list(_WRAPPERS)}")
    return _WRAPPERS[graph](model).eval()


@torch.no_grad()
def example_inputs(
    model: RapSam,
    graph: str,
    *,
    batch: int = 1,
    height: int = 128,
    width: int = 160,
    num_prompts: int = 3,
    seed: int = 0,
) -> tuple[Tensor, ...]:
    """Deterministic example inputs for tracing / parity: a random uint8 image, the
    encoder's features for it, and random boxes inside the padded input."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.randint(0, 256, (batch, height, width, 3), generator=gen, dtype=torch.uint8)
    if graph == ENCODER:
        return (image,)
    feats = EncoderGraph(model).eval()(image)
    if graph == PANOPTIC_DECODER:
        return (feats,)
    xy = torch.rand(batch, num_prompts, 2, generator=gen) * torch.tensor([width, height]) * 0.7
    wh = torch.rand(batch, num_prompts, 2, generator=gen) * torch.tensor([width, height]) * 0.3
    boxes = torch.cat((xy, xy + wh + 4.0), dim=-1)
    return (feats, boxes)
