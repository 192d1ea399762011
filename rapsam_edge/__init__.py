"""rapsam-edge: deploy RAP-SAM (interactive, panoptic and video segmentation) on edge devices.

The runtime half (this package's top level, ``ops``, ``runtime``, ``bundle``) never imports
torch; the training half (``model``, ``train``, ``deploy``) does and is imported explicitly.
"""

__version__ = "0.1.0"

from .errors import RapsamEdgeError
from .runtime.segmenter import ImageEmbedding, Segmenter

__all__ = ["ImageEmbedding", "RapsamEdgeError", "Segmenter", "__version__"]
