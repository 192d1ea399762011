"""Torch reference backend: the export wrappers run eagerly from the bundle's
``model.safetensors`` (optional file). For parity checks and debugging, never auto-picked.
torch is imported inside the class only."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..bundle import Bundle
from .base import Availability, BackendUnavailable, check_feeds

__all__ = ["TorchBackend"]


class TorchBackend(Availability):
    name = "torch"

    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:
        for mod in ("torch", "safetensors"):
            try:
                if importlib.util.find_spec(mod) is None:
                    return f"{mod} is not installed (pip install 'rapsam-edge[train]')"
            except (ImportError, ValueError):
                return f"{mod} is not importable"
        return None

    def __init__(
        self,
        bundle: Bundle,
        graph: str,
        device: str | None = None,
        *,
        num_threads: int | None = None,
    ) -> None:
        reason = self.unavailable_reason(device)
        if reason:
            raise BackendUnavailable(f"{self.name}: {reason}")
        if bundle.weights_path() is None:
            raise BackendUnavailable(
                "torch: the bundle ships no model.safetensors (export with include_weights=True)"
            )
        import torch

        from ..deploy.graphs import make_graph
        from ..model.io import load_model

        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        self._torch = torch
        self.device = device or "cpu"
        self.graph = graph
        self.info = bundle.graphs[graph]
        self.input_names = self.info.input_names
        self.output_names = self.info.output_names
        model = load_model(bundle.weights_path(), map_location=self.device)
        self.module: Any = make_graph(model, graph)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = check_feeds(feeds, self.info.inputs, where=f"{self.name}/{self.graph}")
        torch = self._torch
        args = [torch.from_numpy(feeds[n]).to(self.device) for n in self.input_names]
        with torch.inference_mode():
            out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {n: t.detach().cpu().numpy() for n, t in zip(self.output_names, out)}

    def __repr__(self) -> str:
        return f"TorchBackend(graph={self.graph!r}, device={self.device!r})"
