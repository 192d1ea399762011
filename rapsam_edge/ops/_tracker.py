"""Numpy twin of the compiled core's online tracker (``rapsam_edge._core.OnlineTracker``,
``csrc/tracker.cpp``): the same rules, state and interface, in float64. Track ids agree with
the C++ twin except where a similarity ties a threshold to the last bits (BLAS sums in
another order). ``rapsam_edge.ops.make_tracker`` picks the twin in use and puts it behind
``CheckedTracker`` (the one set of argument checks, ``_checks.tracker_args`` /
``tracker_update_args``); the runtime's ``OnlineTracker`` (``rapsam_edge.runtime.tracker``)
wraps that.

Tracks keep an exponential moving average of unit embeddings; detections are assigned to
tracks by optimal linear assignment on cosine distance plus a penalty for a class change; a
match needs cosine similarity >= ``match_threshold``; unmatched detections with score >=
``birth_score`` start tracks; a track unmatched for more than ``max_missed`` frames dies.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..contract.shared import (
    BIRTH_SCORE,
    CLASS_CHANGE_PENALTY,
    MATCH_THRESHOLD,
    MAX_MISSED,
    MOMENTUM,
)
from ..errors import InputError
from . import _checks
from ._numpy import linear_assignment

__all__ = ["CheckedTracker", "OnlineTracker"]


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class _Track:
    __slots__ = ("class_scores", "embedding", "hits", "missed", "track_id")

    def __init__(self, track_id: int) -> None:
        self.track_id = track_id
        self.embedding = np.zeros(0)
        self.class_scores: dict[int, float] = {}  # insertion order, as the C++ twin
        self.hits = self.missed = 0

    @property
    def class_id(self) -> int:
        return max(self.class_scores, key=self.class_scores.__getitem__)  # first on ties

    def absorb(self, unit_embedding: np.ndarray, cls: int, score: float, momentum: float) -> None:
        m = momentum if self.hits else 0.0
        old = self.embedding if self.embedding.size else 0.0
        self.embedding = _unit(m * old + (1.0 - m) * unit_embedding)
        self.class_scores[cls] = self.class_scores.get(cls, 0.0) + score
        self.hits += 1
        self.missed = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "embedding": self.embedding.copy(),
            "class_scores": dict(self.class_scores),
            "hits": self.hits,
            "missed": self.missed,
        }


class OnlineTracker:
    """Associates per-frame detections into tracks with stable ids (arguments as the C++
    twin's, unchecked: ``rapsam_edge.ops.make_tracker`` checks them, and ``CheckedTracker``
    the arguments of ``update``)."""

    def __init__(
        self,
        match_threshold: float = MATCH_THRESHOLD,
        class_change_penalty: float = CLASS_CHANGE_PENALTY,
        birth_score: float = BIRTH_SCORE,
        max_missed: int = MAX_MISSED,
        momentum: float = MOMENTUM,
    ) -> None:
        self.match_threshold = match_threshold
        self.class_change_penalty = class_change_penalty
        self.birth_score = birth_score
        self.max_missed = max_missed
        self.momentum = momentum
        self._tracks: list[_Track] = []
        self._next_id = 1
        self.frame_index = -1

    @property
    def tracks_started(self) -> int:
        return self._next_id - 1

    @property
    def live_tracks(self) -> int:
        return len(self._tracks)

    @property
    def tracks(self) -> list[dict[str, Any]]:
        """The live tracks, oldest first (the C++ twin's dicts)."""
        return [t.as_dict() for t in self._tracks]

    def reset(self) -> None:
        self._tracks.clear()
        self._next_id = 1
        self.frame_index = -1

    def update(self, embeddings: np.ndarray, classes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """embeddings N x D float32, classes N int32, scores N float32 -> N int32 track ids
        (0: neither matched nor started a track)."""
        n, dim = embeddings.shape
        if n > 0 and self._tracks and self._tracks[0].embedding.size != dim:
            raise InputError("embeddings: dim differs from the tracks'")
        self.frame_index += 1
        ids = np.zeros(n, dtype=np.int32)
        det = _unit(embeddings) if n else np.zeros((0, dim))
        cls = [int(c) for c in classes]
        score = [float(s) for s in scores]
        matched = self._match(det, cls, score, ids) if n and self._tracks else set()
        for i, track in enumerate(self._tracks):
            if i not in matched:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        for c in range(n):
            if ids[c] == 0 and score[c] >= self.birth_score:
                track = _Track(self._next_id)
                self._next_id += 1
                track.absorb(det[c], cls[c], score[c], self.momentum)
                self._tracks.append(track)
                ids[c] = track.track_id
        return ids

    def _match(
        self, det: np.ndarray, cls: list[int], score: list[float], ids: np.ndarray
    ) -> set[int]:
        """Assign detections to live tracks; fills ``ids``, returns the matched tracks."""
        trk = np.stack([t.embedding for t in self._tracks])
        similarity = trk @ det.T  # tracks x detections
        trk_cls = np.array([t.class_id for t in self._tracks])
        changed = trk_cls[:, None] != np.array(cls)[None]
        cost = (1.0 - similarity) + self.class_change_penalty * changed
        rows, cols = linear_assignment(np.ascontiguousarray(cost))
        matched = set()
        for r, c in zip(rows.tolist(), cols.tolist()):
            if float(trk[r] @ det[c]) < self.match_threshold:
                continue
            self._tracks[r].absorb(det[c], cls[c], score[c], self.momentum)
            ids[c] = self._tracks[r].track_id
            matched.add(r)
        return matched


class CheckedTracker:
    """A tracker of either implementation (``impl``: the compiled core's ``OnlineTracker``
    or the numpy twin above) behind the one set of argument checks: ``update`` takes
    embeddings N x D, classes N and scores N as arrays or lists and raises InputError,
    naming the argument, with the same message for both."""

    __slots__ = ("impl",)

    def __init__(self, impl: Any) -> None:
        self.impl = impl

    def update(self, embeddings: Any, classes: Any, scores: Any) -> np.ndarray:
        """embeddings N x D finite reals, classes N integers, scores N finite reals -> N int32
        track ids (0: neither matched nor started a track)."""
        return np.asarray(
            self.impl.update(*_checks.tracker_update_args(embeddings, classes, scores))
        )

    def reset(self) -> None:
        self.impl.reset()

    @property
    def tracks_started(self) -> int:
        return int(self.impl.tracks_started)

    @property
    def live_tracks(self) -> int:
        return int(self.impl.live_tracks)

    @property
    def frame_index(self) -> int:
        return int(self.impl.frame_index)

    @property
    def tracks(self) -> list[dict[str, Any]]:
        """The live tracks, oldest first: dicts of track_id, embedding, class_scores, hits and
        missed."""
        return list(self.impl.tracks)
