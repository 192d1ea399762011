"""How much the SDK accepts from a data file it did not write: the one table of limits that
the checkpoint, class-embedding, safetensors, ``.npy`` and image readers check every declared
size against BEFORE they allocate anything (issue 26).

Each reader compares what a file declares (a zip member's uncompressed size, a tensor's
shape x dtype, a ``.npy`` header's shape, a safetensors header's length and offsets, an image
header's width x height) with the bytes the file really holds and with these limits, and
raises a typed error naming the file, the record and the limit. Memory is therefore bounded
by the file's size (times ``MAX_ZIP_RATIO`` for a deflated zip member) and by the table.
tests/test_memory_bounds.py runs each hostile file through the CLI under an address-space
limit and asserts the child's peak resident memory stays under 1 GB (measured: 0.22 GB, most
of it torch's import).
"""

from __future__ import annotations

from .shared import MAX_FRAME_PIXELS

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "MAX_CONFIG_BYTES",
    "MAX_DATASET_JSON_BYTES",
    "MAX_EMBEDDINGS_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "MAX_NESTING",
    "MAX_NPY_HEADER_BYTES",
    "MAX_PICKLE_BYTES",
    "MAX_PICKLE_OPS",
    "MAX_SAFETENSORS_HEADER_BYTES",
    "MAX_TENSORS",
    "MAX_VIDEO_SAMPLE_BYTES",
    "MAX_ZIP_MEMBERS",
    "MAX_ZIP_RATIO",
    "TABLE",
    "json_nesting",
]

_MiB = 2**20

#: largest checkpoint / weights file read (torch zip or safetensors): an official RAP-SAM
#: R50 training checkpoint with optimizer state is about 0.5 GiB
MAX_CHECKPOINT_BYTES = 4 * 2**30
#: largest class-embeddings file (.npy / .safetensors / torch): 155 x 1 x 768 float32 is
#: 0.5 MiB; this allows some 80,000 classes x 768
MAX_EMBEDDINGS_BYTES = 256 * _MiB
#: a deflated zip member may declare at most this many times its compressed size
#: (torch.save stores records uncompressed: ratio 1; a deflate bomb reaches 1,000)
MAX_ZIP_RATIO = 10
#: most members (records) in a checkpoint's zip archive
MAX_ZIP_MEMBERS = 100_000
#: largest pickle record (``data.pkl``) of a torch checkpoint
MAX_PICKLE_BYTES = 64 * _MiB
#: most opcodes in that pickle (each can create one object, about 250 bytes in torch's
#: restricted unpickler: at most ~250 MB; an mmengine checkpoint has some 50,000)
MAX_PICKLE_OPS = 1_000_000
#: deepest nesting of containers (dicts / lists / tuples) in a checkpoint or a JSON header
MAX_NESTING = 64
#: most tensors in one checkpoint / safetensors file
MAX_TENSORS = 100_000
#: largest safetensors JSON header (the safetensors library's own cap is 100 MB)
MAX_SAFETENSORS_HEADER_BYTES = 16 * _MiB
#: largest .npy header (numpy's default ``max_header_size``)
MAX_NPY_HEADER_BYTES = 10_000
#: largest config.json / class-vocabulary JSON read beside weights
MAX_CONFIG_BYTES = 16 * _MiB
#: largest dataset / results JSON (COCO panoptic, YouTube-VIS annotations, predictions):
#: COCO's panoptic_train2017.json is some 0.4 GiB; parsing costs at most ~25x the file size
MAX_DATASET_JSON_BYTES = 2 * 1024 * _MiB
#: most bytes one dataset video decodes to: its frames (RGB) plus one bool mask per frame
#: per instance (a YouTube-VIS 2019 video, 36 frames of 720 x 1280 with 10 instances, is
#: some 430 MiB); its file_names and annotations declare it, checked after the first frame
MAX_VIDEO_SAMPLE_BYTES = 1024 * _MiB
#: largest image (calibration, dataset, `run` input) decoded: width x height from its header
#: (contract.json's frames.max_pixels, the frame limit of both runtimes: 192 MiB as 8-bit RGB)
MAX_IMAGE_PIXELS = MAX_FRAME_PIXELS
#: largest image file read
MAX_IMAGE_BYTES = 256 * _MiB

#: name -> (value, what it bounds), for documentation and `--help` texts
TABLE: dict[str, tuple[int, str]] = {
    "MAX_CHECKPOINT_BYTES": (MAX_CHECKPOINT_BYTES, "checkpoint / weights file size"),
    "MAX_EMBEDDINGS_BYTES": (MAX_EMBEDDINGS_BYTES, "class-embeddings file size"),
    "MAX_ZIP_RATIO": (MAX_ZIP_RATIO, "declared / compressed size of a deflated zip member"),
    "MAX_ZIP_MEMBERS": (MAX_ZIP_MEMBERS, "records in a checkpoint zip"),
    "MAX_PICKLE_BYTES": (MAX_PICKLE_BYTES, "size of a checkpoint's data.pkl"),
    "MAX_PICKLE_OPS": (MAX_PICKLE_OPS, "opcodes in a checkpoint's data.pkl"),
    "MAX_NESTING": (MAX_NESTING, "container nesting depth (checkpoint, JSON header)"),
    "MAX_TENSORS": (MAX_TENSORS, "tensors in one file"),
    "MAX_SAFETENSORS_HEADER_BYTES": (MAX_SAFETENSORS_HEADER_BYTES, "safetensors JSON header"),
    "MAX_NPY_HEADER_BYTES": (MAX_NPY_HEADER_BYTES, ".npy header"),
    "MAX_CONFIG_BYTES": (MAX_CONFIG_BYTES, "config.json / class vocabulary size"),
    "MAX_DATASET_JSON_BYTES": (MAX_DATASET_JSON_BYTES, "dataset annotations / results JSON"),
    "MAX_VIDEO_SAMPLE_BYTES": (MAX_VIDEO_SAMPLE_BYTES, "one dataset video: frames + masks"),
    "MAX_IMAGE_PIXELS": (MAX_IMAGE_PIXELS, "image width x height (from its header)"),
    "MAX_IMAGE_BYTES": (MAX_IMAGE_BYTES, "image file size"),
}


def json_nesting(raw: bytes) -> int:
    """How deep the objects / arrays of the JSON text ``raw`` nest (strings skipped), counted
    without parsing it, so a 10,000-deep document is refused before a recursive parser
    meets it."""
    import re

    import numpy as np

    text = re.sub(rb'"(?:[^"\\]|\\.)*"', b"", raw)
    arr = np.frombuffer(text, np.uint8)
    if arr.size == 0:
        return 0
    step = np.isin(arr, (0x7B, 0x5B)).astype(np.int64) - np.isin(arr, (0x7D, 0x5D))
    return int(np.cumsum(step).max(initial=0))
