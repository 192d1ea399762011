"""Torch reference backend: the export wrappers run eagerly from a bundle's
``model.safetensors`` (optional file), for parity checks and debugging. It lives on the
training side (it imports torch and the model) and is reached from the runtime only by name
through the backend table (``runtime.registry.BACKENDS["torch"]``); never auto-picked.

Concurrency: calls are serialised by the base class's lock.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from ..bundle import Bundle
from ..errors import BackendUnavailable
from ..runtime.base import Backend

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    name = "torch"

    @classmethod
    def unavailable_reason(cls, device: str | None = None) -> str | None:  # noqa: ARG003
        # Backend's signature; torch's availability does not depend on the device
        for mod in ("torch", "safetensors"):
            try:
                if importlib.util.find_spec(mod) is None:
                    return f"{mod} is not installed (pip install 'rapsam-edge[train]')"
            except (ImportError, ValueError):
                return f"{mod} is not importable"
        return None

    @classmethod
    def library_version(cls) -> str:
        import torch

        return f"torch {torch.__version__}"

    def _open(self, bundle: Bundle, device: str | None, *, num_threads: int | None = None) -> None:
        """
        Options:
          num_threads: ``torch.set_num_threads`` (process-wide in torch).
        """
        if bundle.weights_path() is None:
            raise BackendUnavailable(
                "torch: the bundle ships no model.safetensors (export with include_weights=True)"
            )
        import torch

        from ..model.io import load_model
        from .graphs import make_graph

        if num_threads is not None:
            torch.set_num_threads(int(num_threads))
        self._torch = torch
        self.device = device or "cpu"
        model = load_model(bundle.weights_path(), map_location=self.device)
        self.module: Any = make_graph(model, self.graph)

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        torch = self._torch
        args = [torch.from_numpy(feeds[n]).to(self.device) for n in self.input_names]
        with torch.inference_mode():
            out = self.module(*args)
        out = out if isinstance(out, tuple) else (out,)
        return {n: t.detach().cpu().numpy() for n, t in zip(self.output_names, out)}
