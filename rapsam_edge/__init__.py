"""rapsam-edge: deploy RAP-SAM (interactive, panoptic and video segmentation) on edge devices.

The runtime half (this package's top level, ``ops``, ``runtime``, ``bundle``) never imports
torch; the training half (``model``, ``train``, ``deploy``) does and is imported explicitly.
"""

__version__ = "0.1.0"

from .runtime.segmenter import Segmenter

__all__ = ["Segmenter", "__version__"]
