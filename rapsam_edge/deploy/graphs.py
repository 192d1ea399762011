"""Export wrappers: the three deploy graphs as small ``nn.Module``s around one ``RapSam``.

Graph split (the expensive part runs once per frame):

* ``encoder``: ``image`` uint8 B x H x W x 3 (RGB, letterboxed, H and W multiples of 32)
  -> ``feats`` float32 B x D x H/s x W/s. The wrapper casts to float and permutes to NCHW;
  the model normalises (mean/std in 0..255 units), so the host feeds frames as they are.
* ``panoptic_decoder``: ``feats`` -> ``cls_logits`` B x N x (C + 1), ``mask_logits``
  B x N x h x w, ``query_embed`` B x N x D.
* ``prompt_decoder``: ``feats``, ``boxes`` float32 B x P x 4 (x0, y0, x1, y1 in pixels of the
  padded network input) -> ``mask_logits`` B x P x h x w, ``iou`` B x P.

``GRAPH_SPECS`` lists the input / output names and symbolic shapes (dynamic axes as strings)
of each graph; the exporter and the bundle writer both read it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..model.rapsam import RapSam

__all__ = [
    "GRAPHS",
    "GRAPH_SPECS",
    "EncoderGraph",
    "GraphSpec",
    "PanopticDecoderGraph",
    "PromptDecoderGraph",
    "example_inputs",
    "graph_spec",
    "make_graph",
]


@dataclass(frozen=True)
class GraphSpec:
    """Names, dtypes and symbolic shapes of one graph's inputs and outputs.

    Shapes are tuples of ints and axis names; the names are the dynamic axes (``B``, ``H``,
    ``W``, ``h``, ``w``, ``P``); ``D``, ``N``, ``C1`` (= C + 1) are filled in from the model.
    """

    inputs: tuple[tuple[str, str, tuple[str, ...]], ...]  # (name, dtype, shape)
    outputs: tuple[tuple[str, str, tuple[str, ...]], ...]


GRAPH_SPECS: dict[str, GraphSpec] = {
    "encoder": GraphSpec(
        inputs=(("image", "uint8", ("B", "H", "W", "3")),),
        outputs=(("feats", "float32", ("B", "D", "h", "w")),),
    ),
    "panoptic_decoder": GraphSpec(
        inputs=(("feats", "float32", ("B", "D", "h", "w")),),
        outputs=(
            ("cls_logits", "float32", ("B", "N", "C1")),
            ("mask_logits", "float32", ("B", "N", "h", "w")),
            ("query_embed", "float32", ("B", "N", "D")),
        ),
    ),
    "prompt_decoder": GraphSpec(
        inputs=(
            ("feats", "float32", ("B", "D", "h", "w")),
            ("boxes", "float32", ("B", "P", "4")),
        ),
        outputs=(
            ("mask_logits", "float32", ("B", "P", "h", "w")),
            ("iou", "float32", ("B", "P")),
        ),
    ),
}
GRAPHS: tuple[str, ...] = tuple(GRAPH_SPECS)
DYNAMIC_AXES: frozenset[str] = frozenset({"B", "H", "W", "h", "w", "P"})


def graph_spec(model: RapSam, graph: str) -> dict[str, list[dict]]:
    """Concrete spec of ``graph`` for ``model``: {"inputs": [...], "outputs": [...]}, each
    entry {"name", "dtype", "shape"} with model constants as ints and dynamic axes as
    strings (``h`` = ``H/s`` is written as "H/8" etc. so a reader can relate them)."""
    s = model.feat_stride
    consts = {
        "D": model.decoder.queries.embedding_dim,
        "N": model.num_queries,
        "C1": model.num_classes + 1,
        "3": 3,
        "4": 4,
        "h": f"H/{s}",
        "w": f"W/{s}",
    }

    def entry(name: str, dtype: str, shape: tuple[str, ...]) -> dict:
        return {"name": name, "dtype": dtype, "shape": [consts.get(a, a) for a in shape]}

    spec = GRAPH_SPECS[graph]
    return {
        "inputs": [entry(*i) for i in spec.inputs],
        "outputs": [entry(*o) for o in spec.outputs],
    }


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
    "encoder": EncoderGraph,
    "panoptic_decoder": PanopticDecoderGraph,
    "prompt_decoder": PromptDecoderGraph,
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
    if graph == "encoder":
        return (image,)
    feats = EncoderGraph(model).eval()(image)
    if graph == "panoptic_decoder":
        return (feats,)
    xy = torch.rand(batch, num_prompts, 2, generator=gen) * torch.tensor([width, height]) * 0.7
    wh = torch.rand(batch, num_prompts, 2, generator=gen) * torch.tensor([width, height]) * 0.3
    boxes = torch.cat((xy, xy + wh + 4.0), dim=-1)
    return (feats, boxes)
