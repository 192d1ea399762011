"""Typed stub of the compiled C++ core (csrc/bindings.cpp); twins of rapsam_edge.ops._numpy.

The arguments must be valid: rapsam_edge.ops checks them once, in Python (ops._checks), for
both implementations; here only cheap guards against out-of-bounds access remain (InputError,
or pybind11's TypeError for an unconvertible argument). The import
fails (ImportError from rapsam_edge.errors.ConfigError) when RAPSAM_EDGE_THREADS is set to
anything but an integer in [1, MAX_THREADS]. Defaults shown as ``...`` are the contract's
(rapsam_edge/contract/contract.json, compiled in through the generated rapsam_contract.hpp).
"""

from collections.abc import Sequence
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt

_HW = Sequence[int]
_ValidHW = Sequence[float]

#: the package version this core was built from (rapsam_edge.ops refuses another one)
__version__: str

class _BuildInfo(TypedDict):
    version: str
    compiler: str
    arch: str
    simd: str  # compile-time SIMD extensions, space separated
    build_type: str
    cxx_flags: str
    cores: int  # cores this process may use (sched_getaffinity)
    max_threads: int

def get_num_threads() -> int:
    """Threads a large op uses (calling thread included): set_num_threads, else
    RAPSAM_EDGE_THREADS, else the cores this process may use."""

def set_num_threads(n: int) -> None:
    """Use n threads (1 to MAX_THREADS) in every later op; InputError otherwise."""

def build_info() -> _BuildInfo: ...
def all_finite(a: npt.NDArray[np.float32]) -> bool: ...
def parse_num_threads(raw: str) -> int | None:
    """The core's reading of RAPSAM_EDGE_THREADS (rapsam_edge.contract.threads' rule)."""

def letterbox(
    image: npt.NDArray[np.uint8],
    size: int | tuple[int, int],
    pad_divisor: int = 32,
    pad_value: int = 0,
    swap_rb: bool = False,
) -> tuple[npt.NDArray[np.uint8], float, tuple[int, int]]: ...
def panoptic_fuse(
    cls_logits: npt.NDArray[np.float32],
    mask_logits: npt.NDArray[np.float32],
    valid_hw: _ValidHW,
    out_hw: _HW,
    is_thing: npt.ArrayLike,
    score_threshold: float = ...,
    overlap_threshold: float = ...,
) -> tuple[npt.NDArray[np.int32], np.ndarray]:
    """Returns (label_map, segments); segments.dtype == rapsam_edge.ops.SEGMENT_DTYPE."""

def prompt_masks(
    mask_logits: npt.NDArray[np.float32],
    valid_hw: _ValidHW,
    out_hw: _HW,
    threshold: float = ...,
    stability_offset: float = ...,
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.float32]]: ...
def masks_to_boxes(
    masks: npt.NDArray[np.bool_] | npt.NDArray[np.uint8],
) -> npt.NDArray[np.int32]: ...
def rle_encode(mask: npt.NDArray[Any]) -> dict[str, Any] | list[dict[str, Any]]: ...
def rle_decode(rle: dict[str, Any] | list[dict[str, Any]]) -> npt.NDArray[np.bool_]: ...
def linear_assignment(
    cost: npt.NDArray[Any], maximize: bool = False
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]: ...
def overlay(
    image: npt.NDArray[np.uint8],
    labels: npt.NDArray[np.int32],
    alpha: float = 0.5,
    boundary: bool = True,
) -> npt.NDArray[np.uint8]: ...

class OnlineTracker:
    """C++ twin of ``rapsam_edge.runtime.tracker.OnlineTracker``."""

    def __init__(
        self,
        match_threshold: float = ...,
        class_change_penalty: float = ...,
        birth_score: float = ...,
        max_missed: int = ...,
        momentum: float = ...,
    ) -> None: ...
    def update(
        self, embeddings: np.ndarray, classes: np.ndarray, scores: np.ndarray
    ) -> np.ndarray: ...
    def reset(self) -> None: ...
    @property
    def tracks_started(self) -> int: ...
    @property
    def frame_index(self) -> int: ...
    @property
    def live_tracks(self) -> int: ...
    @property
    def tracks(self) -> list[dict[str, Any]]: ...
