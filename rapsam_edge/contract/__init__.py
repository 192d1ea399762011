"""The torch-free contract both halves of the SDK import: the training / export side writes
what it says, the runtime reads it.

* ``graphs``: graph names, file formats, each graph's I/O tensors by role.
* ``manifest``: the ONE ``Manifest`` type (written by export, validated by the runtime;
  ``_manifest_parse`` holds the validation, ``_manifest_types`` the parts both build).
* ``schema`` (``manifest.schema.json``): the manifest's field rules, the one home both
  runtimes read (the C++ runtime embeds the file; ``schema.first_error`` walks it here).
* ``shared`` (``contract.json``): the defaults and names the C++ side shares (thresholds,
  tracker, graph roles, thread limit, environment variables, shipped bundles).
* ``threads``: the one RAPSAM_EDGE_THREADS rule; ``version``: the package version.
* ``postprocess``: post-processing defaults, the point-prompt box, the segment record.
* ``panoptic_ids``: COCO panoptic id <-> RGB encoding.

Nothing here imports torch, and nothing here imports the rest of the package but
``rapsam_edge.errors`` (``tests/test_layers.py`` enforces it).
"""

from .graphs import (
    DTYPES,
    GRAPH_FORMATS,
    GRAPH_IO,
    GRAPH_NAMES,
    PRECISIONS,
    GraphIO,
    RoleSpec,
    concrete_io,
)
from .manifest import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SUPPORTED_VERSIONS,
    ClassEntry,
    GraphInfo,
    InputSpec,
    Manifest,
    TensorSpec,
    normalize_classes,
    read_classes_file,
)
from .panoptic_ids import id_to_rgb, rgb_to_id
from .postprocess import POINT_BOX_HALF, SATURATED_LOGIT, SEGMENT_DTYPE, PostprocessDefaults

__all__ = [
    "DTYPES",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "GRAPH_FORMATS",
    "GRAPH_IO",
    "GRAPH_NAMES",
    "MANIFEST_NAME",
    "POINT_BOX_HALF",
    "PRECISIONS",
    "SATURATED_LOGIT",
    "SEGMENT_DTYPE",
    "SUPPORTED_VERSIONS",
    "ClassEntry",
    "GraphIO",
    "GraphInfo",
    "InputSpec",
    "Manifest",
    "PostprocessDefaults",
    "RoleSpec",
    "TensorSpec",
    "concrete_io",
    "id_to_rgb",
    "normalize_classes",
    "read_classes_file",
    "rgb_to_id",
]
