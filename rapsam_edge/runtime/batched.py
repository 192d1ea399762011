"""The encoder and the panoptic decoder on a batch of frames: what ``Segmenter`` runs for
one frame (a batch of one) and ``Segmenter.stream_many`` for several cameras at once (one
graph call for the frames of equal network shape, then per-frame post-processing).

The shipped bundles' graphs declare a dynamic batch axis ("B" in the manifest: ONNX and
OpenVINO IR accept any batch); a graph exported with a fixed batch, or a TensorRT engine
built for batch 1, is run one frame at a time (``max_batch``).

Batching changes nothing but the call: each frame's features are the rows of the batch
output (OpenVINO's CPU kernels give the same numbers per row at batch 1 and batch N on the
shipped bundles, up to float rounding where the plugin picks another kernel for another
shape, as it may between its dynamic and static copy of one shape).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import ops
from ..contract.graphs import ENCODER, PANOPTIC_DECODER
from .results import ImageEmbedding, PanopticResult, PreparedFrame

__all__ = ["encode_many", "fuse_many", "max_batch", "panoptic_logits", "panoptic_many"]


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def max_batch(seg: Any) -> int | None:
    """The largest batch the Segmenter's encoder and panoptic decoder both accept: the
    manifest's fixed batch size where a graph declares one, a TensorRT engine's profile
    ``max_batch``; None where both are dynamic (no bound)."""
    bound: int | None = None
    for graph in (ENCODER, PANOPTIC_DECODER):
        backend = seg.graphs[graph]
        first = backend.info.inputs[0].shape[0]
        limits = [first] if isinstance(first, int) else []
        profile_max = getattr(getattr(backend, "profile", None), "max_batch", None)
        if isinstance(profile_max, int):
            limits.append(profile_max)
        for limit in limits:
            bound = limit if bound is None else min(bound, limit)
    return bound


def encode_many(seg: Any, prepared: Sequence[PreparedFrame]) -> list[ImageEmbedding]:
    """One encoder call on frames ``prepare`` validated, all of one network shape: each
    frame's ``ImageEmbedding`` (read-only 1 x D x h x w features, rows of the batch
    output; timings "prepare" and "encoder", the latter the whole call's time)."""
    t0 = time.perf_counter()
    images = [p.image for p in prepared]
    image = images[0] if len(images) == 1 else np.concatenate(images)
    b, h, w, _ = image.shape
    s = seg.bundle.feat_stride
    dims = {"B": b, "D": seg._feat_dim, "h": h // s, "w": w // s}
    feats = seg._run(ENCODER, {"image": image}, dims=dims)["feats"]
    feats.flags.writeable = False  # its rows (views) are read-only too
    ms = _ms(t0)
    return [
        ImageEmbedding(
            p, feats[i : i + 1], {"prepare": p.prepare_ms, ENCODER: ms}, encoder=seg._encoder_id
        )
        for i, p in enumerate(prepared)
    ]


def panoptic_logits(seg: Any, embs: Sequence[ImageEmbedding]) -> tuple[dict, float]:
    """The panoptic decoder's one call on embeddings of one network shape (``encode_many``:
    the graph runs on the arrays it made, unchecked): (its outputs by role, ms)."""
    t0 = time.perf_counter()
    feats = embs[0].feats if len(embs) == 1 else np.concatenate([e.feats for e in embs])
    dims = {
        "B": feats.shape[0],
        "D": seg._feat_dim,
        "h": feats.shape[2],
        "w": feats.shape[3],
        "N": seg.bundle.num_queries,
        "C1": len(seg.is_thing) + 1,
    }
    return seg._run(PANOPTIC_DECODER, {"feats": feats}, dims=dims), _ms(t0)


def fuse_many(
    seg: Any, embs: Sequence[ImageEmbedding], out: dict, decoder_ms: float
) -> list[PanopticResult]:
    """Fusion per frame of the panoptic decoder's batch outputs ``out`` (row i: embs[i]);
    each result's "decoder" timing is the whole call's ``decoder_ms``."""
    results = []
    s = seg.bundle.feat_stride
    for i, emb in enumerate(embs):
        timings = {**emb.timings, "decoder": decoder_ms}
        t0 = time.perf_counter()
        prepared = emb.prepared
        label_map, segments = ops.kernel("panoptic_fuse")(
            out["cls_logits"][i],
            out["mask_logits"][i],
            (prepared.valid_hw[0] / s, prepared.valid_hw[1] / s),
            prepared.frame_hw,
            seg.is_thing,
            float(seg.postprocess.score_threshold),
            float(seg.postprocess.overlap_threshold),
        )
        embed = out["query_embed"][i][segments["query"]]
        timings["postprocess"] = _ms(t0)
        results.append(PanopticResult(label_map, segments, seg.class_names, embed, timings))
    return results


def panoptic_many(seg: Any, embs: Sequence[ImageEmbedding]) -> list[PanopticResult]:
    """panoptic decoder (one call) -> fusion per frame on embeddings of one network shape
    (``panoptic_logits`` then ``fuse_many``)."""
    return fuse_many(seg, embs, *panoptic_logits(seg, embs))
