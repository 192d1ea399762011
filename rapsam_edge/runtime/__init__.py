"""Runtime backends (no torch): one table in ``registry``, one module per backend, each
importing its library lazily, one base class (``base.Backend``), and ``selection``, which
creates backends by name or by the one selection policy. ``segmenter`` is the pipeline;
its settings (``options``), input rules (``inputs``) and frame sources (``sources``) have
modules of their own.

    from rapsam_edge.contract.graphs import ENCODER
    from rapsam_edge.runtime import create_backend
    enc = create_backend(None, ENCODER)      # the default bundle; auto: the selection policy
    print(enc.selection)                     # what it picked and why
    feats = enc.run({enc.name_of("image"): letterboxed[None]})[enc.name_of("feats")]
"""

from ..errors import BackendError, BackendUnavailable
from .base import Backend, check_feeds
from .registry import BACKENDS, available_backends, unavailable_reasons
from .selection import create_backend

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "available_backends",
    "check_feeds",
    "create_backend",
    "unavailable_reasons",
]
