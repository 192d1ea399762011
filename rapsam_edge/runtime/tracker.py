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

from collections.abc import Sequence
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
from ..ops._checks import tracker_args, tracker_update_args


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

    def update(self, detections: Sequence[Detection]) -> list[int]:
        """Assign this frame's detections to tracks; returns one track id per detection
        (0 for a detection that neither matched nor started a track).

        Arguments:
          detections: a list (or tuple) of ``Detection``: ``embedding`` D finite real
            numbers (D >= 1, the same for every detection and the live tracks),
            ``class_id`` an integer class index >= 0, ``score`` a real number in [0, 1].
        Raises:
          InputError: anything else, naming the detection and field. The whole frame is
            checked before the tracker changes: after an error its frame index, tracks and
            ids are exactly as before the call.
        """
        emb, classes, scores = detection_arrays(detections)
        return [int(i) for i in self._impl.update(emb, classes, scores)]


def _field(d: object, i: int, name: str) -> object:
    try:
        return getattr(d, name)
    except AttributeError:
        raise InputError(
            f"detections[{i}] must be a Detection (embedding, class_id, score), got "
            f"{type(d).__name__}"
        ) from None


def _embedding(value: object, i: int) -> np.ndarray:
    try:
        a = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested lists
        a = None
    if a is None or a.dtype.kind not in "iuf" or a.ndim != 1 or a.size < 1:
        got = type(value).__name__ if a is None else f"{a.dtype} of shape {a.shape}"
        raise InputError(
            f"detections[{i}].embedding must be a 1-D array of D >= 1 real numbers, got {got}"
        )
    return a


def detection_arrays(detections: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A frame's ``Detection`` list as (embeddings N x D float32, classes N int32, scores N
    float32), checked whole: each field's type here (a bool is not a class or a score, a
    string not a number), values and ranges by ``ops._checks.tracker_update_args`` (the
    checks of both tracker cores).

    Raises:
      InputError: naming the detection and field (or the argument, for values)."""
    if not isinstance(detections, (list, tuple)):
        raise InputError(f"detections must be a list of Detection, got {type(detections).__name__}")
    if not detections:
        return np.zeros((0, 1), np.float32), np.zeros(0, np.int32), np.zeros(0, np.float32)
    embeddings, classes, scores = [], [], []
    for i, d in enumerate(detections):
        emb, cls, score = (_field(d, i, n) for n in ("embedding", "class_id", "score"))
        embeddings.append(_embedding(emb, i))
        if isinstance(cls, (bool, np.bool_)) or not isinstance(cls, (int, np.integer)):
            raise InputError(
                f"detections[{i}].class_id must be an integer class index, got "
                f"{type(cls).__name__} {cls!r}"
            )
        if isinstance(score, (bool, np.bool_)) or not isinstance(
            score, (int, float, np.integer, np.floating)
        ):
            raise InputError(
                f"detections[{i}].score must be a real number in [0, 1], got "
                f"{type(score).__name__} {score!r}"
            )
        classes.append(int(cls))
        scores.append(float(score))
    dims = {e.size for e in embeddings}
    if len(dims) > 1:
        raise InputError(
            f"detections: embeddings of different lengths {sorted(dims)} (one D per frame)"
        )
    return tracker_update_args(np.stack(embeddings), np.asarray(classes), np.asarray(scores))
