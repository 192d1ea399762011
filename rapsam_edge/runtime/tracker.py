"""Online video instance tracking by query-embedding association (no torch): the settings,
the track and detection records, and ``OnlineTracker``, which runs the ONE tracker
algorithm of the ops in use (``ops.make_tracker``: ``csrc/tracker.cpp``, the C++ runtime's
too, or its numpy twin ``ops/_tracker.py``).

Each frame's thing segments come with the object-adapter embedding of the query that made
them. Tracks keep an exponential moving average of their embeddings; detections are assigned
to tracks with the core's optimal linear assignment on cosine distance (plus a penalty for a
class change), a match needs a cosine similarity above ``match_threshold``. Unmatched
detections above ``birth_score`` start tracks; a track that finds no detection survives
``max_missed`` frames (short occlusions) and then dies. Only live tracks are kept, so memory
does not grow with video length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .. import ops
from ..contract.shared import (
    BIRTH_SCORE,
    CLASS_CHANGE_PENALTY,
    MATCH_THRESHOLD,
    MAX_MISSED,
    MOMENTUM,
)
from ..errors import ConfigError, InputError
from ..ops._checks import tracker_args


@dataclass(frozen=True)
class TrackerConfig:
    """The tracker's settings, checked here (the rule of ``ops.make_tracker``): a bad one
    raises ConfigError naming it."""

    match_threshold: float = MATCH_THRESHOLD  # minimum cosine similarity for a match, [-1, 1]
    class_change_penalty: float = (
        CLASS_CHANGE_PENALTY  # added to the distance on a class change, >= 0
    )
    birth_score: float = BIRTH_SCORE  # minimum detection score to start a track, [0, 1]
    max_missed: int = MAX_MISSED  # frames a track survives without a detection, >= 0
    momentum: float = MOMENTUM  # EMA weight of the old embedding, [0, 1]

    def __post_init__(self) -> None:
        try:
            tracker_args(**asdict(self))
        except InputError as e:
            raise ConfigError(
                f"TrackerConfig.{e}",
                hint="TrackerConfig's docstring and field comments give each setting's range",
            ) from None


@dataclass
class Track:
    """A tracked instance. ``class_scores`` accumulates per-class score sums over the track
    (the reported class is their argmax, as the reference averages class scores)."""

    track_id: int
    embedding: np.ndarray  # D, unit norm
    class_scores: dict[int, float] = field(default_factory=dict)
    hits: int = 0
    missed: int = 0

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


class OnlineTracker:
    """Associates per-frame detections into tracks with stable ids. The association runs in
    the ops implementation in use when the tracker is made (``ops.make_tracker``: the
    compiled core's tracker, the one the C++ runtime uses, or its numpy twin). Embeddings
    and scores are taken as float32, as the Segmenter produces them."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._impl = ops.make_tracker(**asdict(self.config))

    @property
    def tracks_started(self) -> int:
        """Tracks started since the last reset (live or dead)."""
        return int(self._impl.tracks_started)

    @property
    def frame_index(self) -> int:
        """Index of the last frame given to ``update`` (-1 before the first)."""
        return int(self._impl.frame_index)

    @property
    def tracks(self) -> list[Track]:
        """The live tracks, oldest first (a snapshot)."""
        return [Track(**t) for t in self._impl.tracks]

    def reset(self) -> None:
        self._impl.reset()

    def update(self, detections: list[Detection]) -> list[int]:
        """Assign this frame's detections to tracks; returns one track id per detection
        (0 for a detection that neither matched nor started a track).

        Raises:
          InputError: the embeddings' length differs between detections or from the
            tracks'.
        """
        if detections:
            try:
                emb = np.stack([np.asarray(d.embedding, dtype=np.float32) for d in detections])
            except ValueError as e:
                raise InputError(f"detections: embeddings of different lengths ({e})") from None
        else:
            emb = np.zeros((0, 1), np.float32)
        classes = np.array([d.class_id for d in detections], dtype=np.int32)
        scores = np.array([d.score for d in detections], dtype=np.float32)
        return [int(i) for i in self._impl.update(emb, classes, scores)]
