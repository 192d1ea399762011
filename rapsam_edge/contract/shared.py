"""The facts Python and C++ share, loaded from ``contract.json`` (this folder), their ONE home.

Why a data file: the same thresholds, tracker defaults, graph names and roles, thread limit,
environment variable names and shipped bundle names are needed by the Python SDK, the compiled
core (``csrc/``) and the C++ runtime (``csrc/runtime``), and the C++ builds (plain, aarch64
cross, the runtime's CMake package) must not need Python. JSON is read by Python's standard
library here and by CMake's ``string(JSON ...)`` at configure time, which writes
``rapsam_contract.hpp`` (``cmake/contract.cmake``); the same file also lists the bundles CMake
installs with the wheel. A Python module generating a header, or a header parsed by Python,
would each make one language depend on the other's toolchain.

Everything else in the package takes these values by name (``tests/test_single_source.py``
fails when one of them is written as a literal elsewhere).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "BIRTH_SCORE",
    "CLASS_CHANGE_PENALTY",
    "CONTRACT_FILE",
    "DEFAULT_BUNDLE",
    "ENCODER",
    "GRAPH_SPECS",
    "MATCH_THRESHOLD",
    "MAX_FRAME_PIXELS",
    "MAX_JSON_DEPTH",
    "MAX_MANIFEST_BYTES",
    "MAX_MISSED",
    "MAX_PROMPTS",
    "MAX_SOURCE_TEXT",
    "MAX_THREADS",
    "MAX_TIMEOUT",
    "MOMENTUM",
    "OPEN_TIMEOUT",
    "OPS_ENV_VAR",
    "OVERLAP_THRESHOLD",
    "PANOPTIC_DECODER",
    "PARTIAL_BUNDLE_MARK",
    "POINT_BOX_HALF",
    "PROMPT_COUNT_BUCKET",
    "PROMPT_DECODER",
    "PROMPT_THRESHOLD",
    "PROMPT_TRACKER_DEFAULTS",
    "READ_TIMEOUT",
    "REALTIME_BUNDLE",
    "RECONNECT_DELAYS",
    "RECONNECT_TOTAL",
    "SAMPLE_CLIP",
    "SATURATED_LOGIT",
    "SCORE_THRESHOLD",
    "SHIPPED_BUNDLES",
    "STABILITY_OFFSET",
    "THREADS_ENV_VAR",
    "URL_SCHEMES",
]

#: the data file (also read by CMake: cmake/contract.cmake)
CONTRACT_FILE = Path(__file__).with_name("contract.json")
_DATA: dict[str, Any] = json.loads(CONTRACT_FILE.read_text(encoding="utf-8"))

_PP = _DATA["postprocess"]
#: a query makes a panoptic segment when its best class probability exceeds this
#: (MaskFormer's inference, ``object_mask_threshold`` 0.8 in RAP-SAM's config)
SCORE_THRESHOLD: float = float(_PP["score_threshold"])
#: a kept query's visible area / its full mask area must reach this (MaskFormer)
OVERLAP_THRESHOLD: float = float(_PP["overlap_threshold"])
#: a prompt mask pixel is on where its logit exceeds this (0.0 = probability 0.5)
PROMPT_THRESHOLD: float = float(_PP["prompt_threshold"])
#: SAM's stability score offset (``ops.prompt_masks``)
STABILITY_OFFSET: float = float(_PP["stability_offset"])
#: A point prompt (x, y) is fed as the box [x - h, y - h, x + h, y + h] in network-input
#: pixels, h = this (the prompt decoder takes boxes only; RAP-SAM's prompt encoder pools a box).
POINT_BOX_HALF: float = float(_PP["point_box_half"])
#: A +/-inf logit from a reduced-precision graph (FP16 overflow, a saturated INT8 range) is a
#: definite decision (foreground / background, class present / absent), not an error for the
#: whole frame: the runtime replaces it by +/- this value (sigmoid and softmax are saturated
#: far below it in float32) before post-processing. NaN carries no decision and stays an
#: error (``BackendError`` naming the graph and tensor).
SATURATED_LOGIT: float = float(_PP["saturated_logit"])

_TR = _DATA["tracker"]
MATCH_THRESHOLD: float = float(_TR["match_threshold"])
CLASS_CHANGE_PENALTY: float = float(_TR["class_change_penalty"])
BIRTH_SCORE: float = float(_TR["birth_score"])
MAX_MISSED: int = int(_TR["max_missed"])
MOMENTUM: float = float(_TR["momentum"])

#: graph -> {"inputs": [...], "outputs": [...]}, each tensor {"role", "dtype", "shape"}
GRAPH_SPECS: Mapping[str, Mapping[str, Any]] = MappingProxyType(_DATA["graphs"])


def _graph(name: str) -> str:
    """``name``, a graph of the contract (KeyError otherwise: a broken contract file)."""
    GRAPH_SPECS[name]
    return name


#: The graphs by name, what the code writes instead of the strings (the C++ side writes
#: ``contract::graphs::<graph>::name``): the encoder (image -> feats), the panoptic decoder
#: (feats -> cls_logits, mask_logits, query_embed), the prompt decoder (feats, boxes ->
#: mask_logits, iou).
ENCODER: str = _graph("encoder")
PANOPTIC_DECODER: str = _graph("panoptic_decoder")
PROMPT_DECODER: str = _graph("prompt_decoder")

_MANIFEST = _DATA["manifest"]
#: largest manifest.json read (bytes; both runtimes refuse a larger one before reading it)
MAX_MANIFEST_BYTES: int = int(_MANIFEST["max_manifest_bytes"])
#: deepest JSON nesting of a manifest (objects and arrays; both runtimes)
MAX_JSON_DEPTH: int = int(_MANIFEST["max_json_depth"])

#: the click-to-track tracker's defaults (``runtime.prompt_tracker.PromptTrackerConfig``)
PROMPT_TRACKER_DEFAULTS: dict[str, float] = {
    k: v for k, v in _DATA["prompt_tracker"].items() if not k.startswith("_")
}

#: largest frame either runtime accepts (pixels; the result maps come back at its size)
MAX_FRAME_PIXELS: int = int(_DATA["frames"]["max_pixels"])

#: largest thread count (``ops.set_num_threads``, ``RAPSAM_EDGE_THREADS``)
MAX_THREADS: int = int(_DATA["threads"]["max"])
#: most prompts one ``prompt`` call accepts (the default and the upper bound of
#: ``max_prompts``, Python's and the C++ runtime's ``SegmenterOptions``)
MAX_PROMPTS: int = int(_DATA["prompts"]["max"])
#: a ``prompt`` call's boxes are padded (the last one repeated) to the next multiple of this,
#: at most ``max_prompts``, and only the caller's rows are returned: the prompt decoder then
#: sees few distinct input shapes (OpenVINO's "auto" static copies, one compile per shape).
#: Prompts do not interact in RAP-SAM's prompt decoder (checked: tests/test_prompt_bucket.py)
PROMPT_COUNT_BUCKET: int = int(_DATA["prompts"]["count_bucket"])
THREADS_ENV_VAR: str = _DATA["env"]["threads"]
OPS_ENV_VAR: str = _DATA["env"]["ops"]

_VS = _DATA["video_source"]
#: seconds to open a video source and read its first frame (also per reconnect attempt)
OPEN_TIMEOUT: float = float(_VS["open_timeout"])
#: seconds to wait for each later frame
READ_TIMEOUT: float = float(_VS["read_timeout"])
#: seconds waited before each reconnect attempt of a live source (one entry per attempt)
RECONNECT_DELAYS: tuple[float, ...] = tuple(float(d) for d in _VS["reconnect_delays"])
#: seconds one outage may take in all (delays + opens) before the source is lost
RECONNECT_TOTAL: float = float(_VS["reconnect_total"])
#: largest timeout / total accepted (an hour): a larger one is a hang by another name
MAX_TIMEOUT: float = float(_VS["max_timeout"])
#: longest URL or GStreamer pipeline accepted (UTF-8 bytes)
MAX_SOURCE_TEXT: int = int(_VS["max_source_text"])
#: URL scheme -> source kind ("rtsp", "http"); other schemes are refused
URL_SCHEMES: Mapping[str, str] = MappingProxyType(
    {scheme: kind for kind, schemes in _VS["schemes"].items() for scheme in schemes}
)

_BUNDLES = _DATA["bundles"]
#: the bundle ``Segmenter()`` loads when given none
DEFAULT_BUNDLE: str = _BUNDLES["default"]
#: the real-time model (issue 14): ``edge-s-fused`` trained from the default model; its INT8
#: OpenVINO twin is ``REALTIME_BUNDLE + "-ov-int8"``
REALTIME_BUNDLE: str = _BUNDLES["realtime"]
#: the bundles installed with the package (CMakeLists.txt installs these, weights excluded)
SHIPPED_BUNDLES: tuple[str, ...] = tuple(_BUNDLES["shipped"])
#: the sample clip, relative to the models directory
SAMPLE_CLIP: str = _BUNDLES["sample_clip"]
#: in the name of a folder a bundle writer is still filling (``deploy.staging``): never a
#: bundle to load (``assets.resolve_bundle`` refuses it; a killed writer leaves one behind)
PARTIAL_BUNDLE_MARK: str = _BUNDLES["partial_mark"]
