"""Runtime backends (no torch): one table in ``registry``, one module per backend, each
importing its library lazily.

    from rapsam_edge.runtime import create_backend
    enc = create_backend("models/bundle", "encoder")          # auto: fastest available
    print(enc.selection)                                      # what it picked and why
    feats = enc.run({"image": letterboxed[None]})["feats"]
"""

from .base import Backend, BackendUnavailable, check_feeds
from .registry import BACKENDS, available_backends, create_backend, unavailable_reasons

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendUnavailable",
    "available_backends",
    "check_feeds",
    "create_backend",
    "unavailable_reasons",
]
