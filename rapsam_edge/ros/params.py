"""The node's parameters: one table (``PARAMETERS``), read from a ROS 2 parameter file or
from the parameters ROS hands the node (``--ros-args --params-file FILE``), checked here.

A parameter file (``config/rapsam_edge.yaml`` in this folder is the documented example):

    rapsam_edge:                 # the node's name (or /** for every node)
      ros__parameters:
        bundle: edge-s-synthetic
        backend: auto
        task: track              # track (track ids) | panoptic (segment ids)
        prompts: true            # take prompts/boxes and prompts/point (click-to-track)
        overlay: true            # publish debug/overlay
        score_threshold: 0.8     # leave out for the bundle's own
        tracker:
          max_missed: 10
        prompt_tracker:
          max_occluded: 15

``tracker.*`` are the fields of ``runtime.tracker.TrackerConfig`` and ``prompt_tracker.*``
those of ``PromptTrackerConfig``; they check their own values. An unknown name is a
``ConfigError`` (a misspelt parameter is never silently ignored).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..contract.files import read_regular
from ..contract.shared import DEFAULT_BUNDLE
from ..errors import ConfigError
from ._optional import require

__all__ = ["MAX_PARAMS_BYTES", "PARAMETERS", "NodeParams", "flatten"]

#: the largest parameter file read
MAX_PARAMS_BYTES = 1 << 20
#: name -> (type, what it sets); ``tracker.*`` / ``prompt_tracker.*`` are the config fields
PARAMETERS: dict[str, tuple[type, str]] = {
    "bundle": (str, "bundle directory or shipped bundle name"),
    "backend": (str, '"auto", "fastest" or a backend name'),
    "task": (str, '"track" (ids = track ids) or "panoptic" (ids = segment ids)'),
    "prompts": (bool, "take prompts/boxes and prompts/point, publish prompts/masks"),
    "overlay": (bool, "publish debug/overlay"),
    "input_size": (int, "network long side in pixels (default: the bundle's)"),
    "score_threshold": (float, "panoptic score threshold (default: the bundle's)"),
    "overlap_threshold": (float, "panoptic overlap threshold (default: the bundle's)"),
    "prompt_threshold": (float, "prompt mask logit threshold (default: the bundle's)"),
}
_TASKS = ("track", "panoptic")
_GROUPS = ("tracker", "prompt_tracker")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"tracker": {"max_missed": 3}}`` -> ``{"tracker.max_missed": 3}`` (ROS's names)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _typed(name: str, value: Any, kind: type) -> Any:
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if not ok or (kind is float and not math.isfinite(value)):
        raise ConfigError(
            f"parameter {name!r} must be {kind.__name__}, got {value!r}",
            hint="config/rapsam_edge.yaml lists the parameters and their types",
        )
    return value


@dataclass(frozen=True)
class NodeParams:
    """The checked parameters (``PARAMETERS``; None = the bundle's value)."""

    bundle: str = DEFAULT_BUNDLE
    backend: str = "auto"
    task: str = "track"
    prompts: bool = True
    overlay: bool = True
    input_size: int | None = None
    score_threshold: float | None = None
    overlap_threshold: float | None = None
    prompt_threshold: float | None = None
    tracker: dict[str, Any] = field(default_factory=dict)
    prompt_tracker: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> NodeParams:
        """From flat (``tracker.max_missed``) or nested names.

        Raises:
          ConfigError: an unknown name, a value of the wrong type, an unknown task, or a
            tracker / prompt tracker setting its config refuses."""
        values: dict[str, Any] = {}
        groups: dict[str, dict[str, Any]] = {g: {} for g in _GROUPS}
        for name, value in flatten(params).items():
            group, _, key = name.partition(".")
            if group in _GROUPS and key:
                groups[group][key] = value
            elif name in PARAMETERS:
                values[name] = _typed(name, value, PARAMETERS[name][0])
            else:
                raise ConfigError(
                    f"unknown parameter {name!r} (have {sorted(PARAMETERS)} and "
                    "tracker.*, prompt_tracker.*)",
                    hint="config/rapsam_edge.yaml lists the parameters",
                )
        if values.get("task", "track") not in _TASKS:
            raise ConfigError(f"parameter 'task' must be one of {_TASKS}, got {values['task']!r}")
        out = cls(**values, tracker=groups["tracker"], prompt_tracker=groups["prompt_tracker"])
        out.tracker_config()
        out.prompt_tracker_config()
        return out

    @classmethod
    def from_yaml(cls, path: str | Path, node_name: str = "rapsam_edge") -> NodeParams:
        """From a ROS 2 parameter file: ``node_name`` (or ``/**``) -> ``ros__parameters``.

        Raises:
          ConfigError: not a regular file of at most ``MAX_PARAMS_BYTES``, not YAML, no
            section for the node, or bad parameters (``from_mapping``)."""
        yaml = require("yaml")
        raw = read_regular(path, "parameter file", ConfigError, max_bytes=MAX_PARAMS_BYTES)
        try:
            doc = yaml.safe_load(raw.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            raise ConfigError(f"parameter file {str(path)!r} is not YAML: {e}") from None
        if not isinstance(doc, Mapping):
            raise ConfigError(f"parameter file {str(path)!r} holds no mapping")
        params: dict[str, Any] = {}
        for section in ("/**", node_name, "/" + node_name.lstrip("/")):
            body = doc.get(section)
            if isinstance(body, Mapping) and isinstance(body.get("ros__parameters"), Mapping):
                params.update(body["ros__parameters"])
        if not params and not any(s in doc for s in ("/**", node_name)):
            raise ConfigError(
                f"parameter file {str(path)!r} has no section {node_name!r} or '/**' with "
                "ros__parameters"
            )
        return cls.from_mapping(params)

    def tracker_config(self) -> Any:
        """``TrackerConfig`` of ``tracker.*`` (its own checks, as ConfigError)."""
        from ..runtime.tracker import TrackerConfig

        return _config(TrackerConfig, self.tracker, "tracker")

    def prompt_tracker_config(self) -> Any:
        """``PromptTrackerConfig`` of ``prompt_tracker.*``."""
        from ..runtime.prompt_tracker_config import PromptTrackerConfig

        return _config(PromptTrackerConfig, self.prompt_tracker, "prompt_tracker")

    def segmenter_kwargs(self) -> dict[str, Any]:
        """The ``Segmenter(...)`` arguments."""
        out: dict[str, Any] = {"backend": self.backend, "tracker": self.tracker_config()}
        for name in ("input_size", "score_threshold", "overlap_threshold", "prompt_threshold"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out


def _config(kind: Any, values: Mapping[str, Any], group: str) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(
            f"unknown parameter(s) {[f'{group}.{k}' for k in unknown]} (have "
            f"{sorted(f'{group}.{n}' for n in names)})"
        )
    try:
        return kind(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{group}: {e}") from None
