"""The deploy graphs' contract: their names, file formats and I/O tensors (torch-free).

Three graphs split one RAP-SAM model so that the expensive part runs once per frame
(``rapsam_edge.deploy.graphs`` holds the torch export wrappers that implement them):

* ``encoder``: ``image`` uint8 B x H x W x 3 (RGB, letterboxed, H and W multiples of the
  pad divisor) -> ``feats`` float32 B x D x H/s x W/s (normalisation is inside the graph).
* ``panoptic_decoder``: ``feats`` -> ``cls_logits`` B x N x (C + 1), ``mask_logits``
  B x N x H/s x W/s, ``query_embed`` B x N x D.
* ``prompt_decoder``: ``feats``, ``boxes`` float32 B x P x 4 (x0, y0, x1, y1 in pixels of
  the padded network input) -> ``mask_logits`` B x P x H/s x W/s, ``iou`` B x P.

Each tensor has a **role** (the names above). A bundle's manifest lists every graph's inputs
and outputs in role order with the names the graph file really uses; the runtime maps roles
to those names (``GraphInfo.name_of``), so a graph exported with other tensor names still
runs. Shapes are ints (fixed) or strings (dynamic axes: ``B``, ``H``, ``W``, ``P``, and
``H/s`` / ``W/s`` for the feature grid).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from .schema import MANIFEST_SCHEMA
from .shared import ENCODER, GRAPH_SPECS, PANOPTIC_DECODER, PROMPT_DECODER

__all__ = [
    "DTYPES",
    "ENCODER",
    "GRAPH_FORMATS",
    "GRAPH_IO",
    "GRAPH_NAMES",
    "PANOPTIC_DECODER",
    "PRECISIONS",
    "PROMPT_DECODER",
    "GraphIO",
    "RoleSpec",
    "concrete_io",
]

_GRAPH_DEF = MANIFEST_SCHEMA["$defs"]["graph"]["properties"]


def _suffix(pattern: str) -> str:
    """The file suffix a graph-file pattern such as ``\\.onnx$`` requires."""
    m = re.fullmatch(r"\\(\.[a-z]+)\$", pattern)
    if m is None:
        raise ValueError(f"manifest.schema.json: graph file pattern {pattern!r} is not a suffix")
    return m.group(1)


#: graph file formats a bundle may carry: format -> file suffix (``manifest.schema.json``)
GRAPH_FORMATS: Mapping[str, str] = MappingProxyType(
    {fmt: _suffix(s["pattern"]) for fmt, s in _GRAPH_DEF["files"]["properties"].items()}
)
#: tensor dtypes a manifest may name (numpy spelling; ``manifest.schema.json``)
DTYPES: frozenset[str] = frozenset(
    MANIFEST_SCHEMA["$defs"]["tensor"]["properties"]["dtype"]["enum"]
)
#: numeric precision a graph was exported / quantized in (``manifest.schema.json``)
PRECISIONS: frozenset[str] = frozenset(_GRAPH_DEF["precision"]["enum"])


class RoleSpec(NamedTuple):
    """One tensor of a graph as the contract defines it.

    Attributes:
      role: the tensor's role (and default name), e.g. "image", "feats".
      dtype: numpy dtype name.
      shape: symbolic shape; ``B``, ``H``, ``W``, ``P``, ``h`` (= H/s), ``w`` (= W/s) are
        dynamic; ``D`` (feature dim), ``N`` (queries), ``C1`` (classes + 1) are model
        constants; digits are fixed sizes.
    """

    role: str
    dtype: str
    shape: tuple[str, ...]


@dataclass(frozen=True)
class GraphIO:
    """Inputs and outputs of one graph, in role order."""

    inputs: tuple[RoleSpec, ...]
    outputs: tuple[RoleSpec, ...]

    @property
    def input_roles(self) -> tuple[str, ...]:
        return tuple(t.role for t in self.inputs)

    @property
    def output_roles(self) -> tuple[str, ...]:
        return tuple(t.role for t in self.outputs)


def _graph_io(spec: Mapping) -> GraphIO:
    def tensors(key: str) -> tuple[RoleSpec, ...]:
        return tuple(RoleSpec(t["role"], t["dtype"], tuple(t["shape"])) for t in spec[key])

    return GraphIO(inputs=tensors("inputs"), outputs=tensors("outputs"))


#: the graphs in their canonical order (``contract.json``, shared with the C++ runtime)
GRAPH_NAMES: tuple[str, ...] = tuple(GRAPH_SPECS)
GRAPH_IO: Mapping[str, GraphIO] = MappingProxyType(
    {name: _graph_io(spec) for name, spec in GRAPH_SPECS.items()}
)


def concrete_io(
    graph: str, *, feat_dim: int, num_queries: int, num_classes: int, feat_stride: int
) -> dict[str, list[dict]]:
    """The manifest entry of ``graph``'s tensors for one model.

    Arguments:
      graph: one of ``GRAPH_NAMES``.
      feat_dim, num_queries, num_classes, feat_stride: the model's D, N, C and stride s.
    Returns:
      {"inputs": [...], "outputs": [...]}, each entry {"name", "dtype", "shape"} in role
      order, with model constants as ints and dynamic axes as strings ("H/8" for h).
    Raises:
      KeyError: unknown graph.
    """
    consts: dict[str, int | str] = {
        "D": feat_dim,
        "N": num_queries,
        "C1": num_classes + 1,
        "3": 3,
        "4": 4,
        "h": f"H/{feat_stride}",
        "w": f"W/{feat_stride}",
    }
    io = GRAPH_IO[graph]

    def entry(t: RoleSpec) -> dict:
        return {"name": t.role, "dtype": t.dtype, "shape": [consts.get(a, a) for a in t.shape]}

    return {"inputs": [entry(t) for t in io.inputs], "outputs": [entry(t) for t in io.outputs]}
