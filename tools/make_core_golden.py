"""Golden outputs of the numpy twins for the plain C++ tests (csrc/tests/core_tests.cpp reads
them), so that a build without Python (the aarch64 cross build under qemu) is checked against
the twins too. Cases: smooth and i.i.d.-noise logits (the vectorised dense and cell paths),
near ties, upsampling and downsampling.

    python tools/make_core_golden.py      # rewrites csrc/tests/data/golden.bin

Layout (little endian): b"RPSG", int32 version 1, int32 number of panoptic cases, then per
case: int32 n, c1, h, w, out_h, out_w; float64 valid_h, valid_w, score, overlap; float32
cls[n*c1]; float32 masks[n*h*w]; uint8 is_thing[c1-1]; int32 label_map[out_h*out_w]; int32
number of segments; per segment int32 id, class, query; float32 score; int64 area; uint8
is_thing. Then int32 number of prompt cases, per case: int32 n, h, w, out_h, out_w; float64
valid_h, valid_w, threshold, offset; float32 logits[n*h*w]; uint8 masks[n*out_h*out_w];
float32 stability[n].
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from rapsam_edge.ops import _numpy as twin

OUT = Path(__file__).resolve().parent.parent / "csrc" / "tests" / "data" / "golden.bin"


def panoptic_cases():
    rng = np.random.default_rng(2024)
    for i in range(8):
        n, c, h, w = 16, 5, 12 + i, 16
        cls = np.full((n, c + 1), -8.0, np.float32)
        cls[:, -1] = 0.0
        kept = rng.choice(n, 6 + i % 3, replace=False)
        cls[kept, rng.integers(0, c, len(kept))] = 6.0 + rng.uniform(-1e-3, 1e-3, len(kept))
        if i % 2:  # i.i.d. noise: most cells mixed, the dense-row path
            masks = rng.standard_normal((n, h, w)) * (1 + i % 3)
        else:  # smooth blobs: the cell path
            yy, xx = np.mgrid[:h, :w]
            cy, cx = rng.uniform(0, h, (n, 1, 1)), rng.uniform(0, w, (n, 1, 1))
            masks = 4.0 - np.hypot(yy - cy, xx - cx)
        masks = masks.astype(np.float32)
        if i == 3:
            masks[kept[1]] = masks[kept[0]]  # exact ties
        out = [(60, 80), (45, 64), (70, 50), (7, 9)][i % 4]
        thing = np.arange(c) < 3
        yield cls, masks, (h - 0.5 * (i % 2), float(w)), out, thing, 0.5, 0.5


def prompt_cases():
    rng = np.random.default_rng(7)
    for i in range(4):
        n, h, w = 3, 10 + i, 14
        logits = (rng.standard_normal((n, h, w)) * 3).astype(np.float32)
        if i % 2 == 0:
            yy, xx = np.mgrid[:h, :w]
            logits[0] = (3 - np.hypot(yy - h / 2, xx - w / 2)).astype(np.float32)
        yield logits, (h - 0.25, float(w)), [(40, 48), (33, 41), (5, 60), (50, 50)][i], 0.0, 1.0


def build() -> bytes:
    """The golden file's bytes (deterministic)."""
    buf = bytearray(b"RPSG") + struct.pack("<i", 1)
    cases = list(panoptic_cases())
    buf += struct.pack("<i", len(cases))
    for cls, masks, valid, out, thing, score, overlap in cases:
        n, c1 = cls.shape
        _, h, w = masks.shape
        label, segs = twin.panoptic_fuse(cls, masks, valid, out, thing, score, overlap)
        buf += struct.pack("<6i4d", n, c1, h, w, *out, *valid, score, overlap)
        buf += cls.astype("<f4").tobytes() + masks.astype("<f4").tobytes()
        buf += thing.astype(np.uint8).tobytes() + label.astype("<i4").tobytes()
        buf += struct.pack("<i", len(segs))
        for s in segs:
            buf += struct.pack(
                "<3ifqB", s["id"], s["class"], s["query"], s["score"], s["area"], int(s["is_thing"])
            )
    pcases = list(prompt_cases())
    buf += struct.pack("<i", len(pcases))
    for logits, valid, out, thr, off in pcases:
        n, h, w = logits.shape
        masks, stability = twin.prompt_masks(logits, valid, out, thr, off)
        buf += struct.pack("<5i4d", n, h, w, *out, *valid, thr, off)
        buf += logits.astype("<f4").tobytes() + masks.astype(np.uint8).tobytes()
        buf += stability.astype("<f4").tobytes()
    return bytes(buf)


def main() -> None:
    data = build()
    OUT.write_bytes(data)
    print(f"wrote {OUT} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
