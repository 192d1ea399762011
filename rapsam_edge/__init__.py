"""rapsam-edge: deploy RAP-SAM (interactive, panoptic and video segmentation) on edge devices.

The runtime half (this package's top level, ``ops``, ``runtime``, ``bundle``) never imports
torch; the training half (``model``, ``train``, ``deploy``) does and is imported explicitly.
"""

from .contract.version import package_version
from .errors import RapsamEdgeError
from .runtime.segmenter import ImageEmbedding, Segmenter

__version__ = package_version()

__all__ = ["ImageEmbedding", "RapsamEdgeError", "Segmenter", "__version__"]
