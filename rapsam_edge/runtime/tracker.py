"""Online video instance tracking by query-embedding association (no torch).

Each frame's thing segments come with the object-adapter embedding of the query that made
them. Tracks keep an exponential moving average of their embeddings; detections are assigned
to tracks with the core's optimal linear assignment on cosine distance (plus a penalty for a
class change), a match needs a cosine similarity above ``match_threshold``. Unmatched
detections above ``birth_score`` start tracks; a track that finds no detection survives
``max_missed`` frames (short occlusions) and then dies. Only live tracks are kept, so memory
does not grow with video length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import ops
from ..contract.shared import (
    BIRTH_SCORE,
    CLASS_CHANGE_PENALTY,
    MATCH_THRESHOLD,
    MAX_MISSED,
    MOMENTUM,
)


@dataclass(frozen=True)
class TrackerConfig:
    match_threshold: float = MATCH_THRESHOLD  # minimum cosine similarity for a match
    class_change_penalty: float = (
        CLASS_CHANGE_PENALTY  # added to the cosine distance when classes differ
    )
    birth_score: float = BIRTH_SCORE  # minimum detection score to start a track
    max_missed: int = MAX_MISSED  # frames a track survives without a detection
    momentum: float = MOMENTUM  # EMA weight of the old embedding


@dataclass
class Track:
    """A tracked instance. ``class_scores`` accumulates per-class score sums over the track
    (the reported class is their argmax, as the reference averages class scores)."""

    track_id: int
    embedding: np.ndarray  # D, unit norm
    class_scores: dict[int, float] = field(default_factory=dict)
    hits: int = 0
    missed: int = 0
    last_score: float = 0.0

    @property
    def class_id(self) -> int:
        return max(self.class_scores, key=self.class_scores.__getitem__)

    @property
    def score(self) -> float:
        return self.class_scores[self.class_id] / max(self.hits, 1)


@dataclass(frozen=True)
class Detection:
    embedding: np.ndarray  # D
    class_id: int
    score: float


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


class OnlineTracker:
    """Associates per-frame detections into tracks with stable ids."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 1
        self.frame_index = -1

    @property
    def tracks_started(self) -> int:
        """Tracks started since the last reset (live or dead)."""
        return self._next_id - 1

    def reset(self) -> None:
        self.tracks.clear()
        self._next_id = 1
        self.frame_index = -1

    def update(self, detections: list[Detection]) -> list[int]:
        """Assign this frame's detections to tracks; returns one track id per detection
        (0 for a detection that neither matched nor started a track)."""
        cfg = self.config
        self.frame_index += 1
        ids = [0] * len(detections)
        matched_tracks: set[int] = set()
        if detections and self.tracks:
            det_emb = _unit(np.stack([d.embedding for d in detections]))
            trk_emb = np.stack([t.embedding for t in self.tracks])
            cost = 1.0 - trk_emb @ det_emb.T  # tracks x detections
            det_cls = np.array([d.class_id for d in detections])
            trk_cls = np.array([t.class_id for t in self.tracks])
            cost = cost + cfg.class_change_penalty * (trk_cls[:, None] != det_cls[None])
            rows, cols = ops.linear_assignment(np.ascontiguousarray(cost))
            for r, c in zip(rows.tolist(), cols.tolist()):
                similarity = float(trk_emb[r] @ det_emb[c])
                if similarity < cfg.match_threshold:
                    continue
                self._absorb(self.tracks[r], detections[c], det_emb[c])
                ids[c] = self.tracks[r].track_id
                matched_tracks.add(r)
        # unmatched tracks age; the long-missing die
        for i, track in enumerate(self.tracks):
            if i not in matched_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= cfg.max_missed]
        # births
        for c, det in enumerate(detections):
            if ids[c] == 0 and det.score >= cfg.birth_score:
                track = Track(track_id=self._next_id, embedding=_unit(det.embedding))
                self._next_id += 1
                self._absorb(track, det, track.embedding)
                self.tracks.append(track)
                ids[c] = track.track_id
        return ids

    def _absorb(self, track: Track, det: Detection, unit_embedding: np.ndarray) -> None:
        m = self.config.momentum if track.hits else 0.0
        track.embedding = _unit(m * track.embedding + (1.0 - m) * unit_embedding)
        track.class_scores[det.class_id] = track.class_scores.get(det.class_id, 0.0) + det.score
        track.hits += 1
        track.missed = 0
        track.last_score = det.score
