"""Random fuzzing of the compiled post-processing core against its numpy twins, as the ops
run it: behind the one set of argument checks (``rapsam_edge.ops.impl("cpp")``).

Every call draws an op and arguments from a mix of valid inputs (random sizes, values on
thresholds, huge / tiny / saturated values, non-contiguous and read-only arrays) and mutated
ones (wrong dtype, rank, shape, NaN / inf, negative or huge sizes, wrong scalar types, corrupt
RLE). The compiled op must either return or raise ``InputError``; anything else (another
exception type, a crash, a sanitizer report) is a finding. A share of the calls (``--twin``)
also runs the numpy twin: equal outputs on valid inputs, ``InputError`` from both on
invalid ones.

    python tools/fuzz_ops.py --calls 100000 --seed 1            # a run
    # under AddressSanitizer + UBSan (CI's sanitizer job): build the core with
    # -DRAPSAM_SANITIZE=ON and run with LD_PRELOAD=libasan.so:libubsan.so

Prints the number of calls per op, the returns and typed errors, and exits non-zero on the
first finding (with the seed and call index to replay it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # fuzz this tree's build
from rapsam_edge import ops
from rapsam_edge.errors import InputError
from rapsam_edge.ops import _numpy as twin

F32 = np.float32
CORE = ops.impl("cpp")  # CoreUnavailableError without a compiled core


def _float_array(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    kind = rng.integers(0, 6)
    if kind == 0:
        a = rng.standard_normal(shape) * 4
    elif kind == 1:
        a = np.round(rng.standard_normal(shape) * 2)  # values exactly on thresholds
    elif kind == 2:
        a = rng.standard_normal(shape) * 1e30  # saturated
    elif kind == 3:
        a = rng.standard_normal(shape) * 1e-38  # denormal-ish
    elif kind == 4:
        a = np.zeros(shape)
    else:
        a = rng.uniform(-20, 20, shape)
    return a.astype(F32)


def _maybe_mutate_array(rng: np.random.Generator, a: np.ndarray) -> tuple[np.ndarray, bool]:
    """(array, mutated?) where a mutation is an invalid dtype / rank / value."""
    r = rng.random()
    if r < 0.75:
        if rng.random() < 0.1 and a.ndim >= 2 and a.shape[-1] > 1:
            a = np.asfortranarray(a)  # valid, not C-contiguous
        if rng.random() < 0.1:
            a = a.copy()
            a.setflags(write=False)  # valid, read-only
        return a, False
    kind = rng.integers(0, 5)
    if kind == 0 and a.dtype.kind == "f" and a.size:
        a = a.copy()
        a.flat[rng.integers(0, a.size)] = rng.choice([np.nan, np.inf, -np.inf])
    elif kind == 1:
        with np.errstate(invalid="ignore", over="ignore"):  # inf / 1e30 into ints: garbage is fine
            a = a.astype(rng.choice([np.float64, np.int32, np.uint8, np.int64, bool]))
    elif kind == 2:
        a = a[None]  # one rank too many
    elif kind == 3 and a.ndim:
        a = a.reshape(-1)[: max(0, a.size - 1)]  # wrong rank / size
    else:
        return np.array("not an array"), True  # type: ignore[return-value]
    return a, True


def _scalar(rng: np.random.Generator, good: object) -> tuple[object, bool]:
    if rng.random() < 0.85:
        return good, False
    return rng.choice(np.array(["x", None, np.nan, -1, 10**30, 1e300, True], dtype=object)), True


def case_panoptic(rng):
    n, c = int(rng.integers(0, 12)), int(rng.integers(1, 6))
    h, w = int(rng.integers(1, 24)), int(rng.integers(1, 24))
    cls, bad1 = _maybe_mutate_array(rng, _float_array(rng, (n, c + 1)))
    masks, bad2 = _maybe_mutate_array(rng, _float_array(rng, (n, h, w)))
    valid = (float(rng.uniform(0.5, h)), float(rng.uniform(0.5, w)))
    out = (int(rng.integers(1, 80)), int(rng.integers(1, 80)))
    out, bad3 = _scalar(rng, out)
    thr, bad4 = _scalar(rng, float(rng.uniform(0, 1)))
    thing = rng.random(c) > 0.5
    args = (cls, masks, valid, out, thing, thr, float(rng.uniform(0, 1)))
    return "panoptic_fuse", args, bad1 or bad2 or bad3 or bad4


def case_prompt(rng):
    n, h, w = int(rng.integers(0, 5)), int(rng.integers(1, 30)), int(rng.integers(1, 30))
    logits, bad = _maybe_mutate_array(rng, _float_array(rng, (n, h, w)))
    valid = (float(rng.uniform(0.5, h)), float(rng.uniform(0.5, w)))
    out = (int(rng.integers(1, 90)), int(rng.integers(1, 90)))
    off, bad2 = _scalar(rng, float(rng.uniform(0, 3)))
    return "prompt_masks", (logits, valid, out, float(rng.uniform(-2, 2)), off), bad or bad2


def case_letterbox(rng):
    h, w = int(rng.integers(1, 60)), int(rng.integers(1, 60))
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    image, bad = _maybe_mutate_array(rng, image)
    size, bad2 = _scalar(rng, int(rng.integers(1, 4)) * 32)
    return (
        "letterbox",
        (image, size, 32, int(rng.integers(0, 256)), bool(rng.random() < 0.5)),
        (bad or bad2),
    )


def case_boxes(rng):
    masks = rng.random(
        (int(rng.integers(0, 5)), int(rng.integers(1, 20)), int(rng.integers(1, 20)))
    )
    masks, bad = _maybe_mutate_array(rng, masks > 0.7)
    return "masks_to_boxes", (masks,), bad


def case_rle_encode(rng):
    mask = rng.random((int(rng.integers(1, 20)), int(rng.integers(1, 20)))) > rng.random()
    mask, bad = _maybe_mutate_array(rng, mask)
    return "rle_encode", (mask,), bad


def case_rle_decode(rng):
    h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    rle = twin.rle_encode(rng.random((h, w)) > 0.5)
    if rng.random() < 0.4:  # corrupt bytes / size / counts
        counts = bytearray(rle["counts"])
        for _ in range(int(rng.integers(1, 4))):
            if counts:
                counts[int(rng.integers(0, len(counts)))] = int(rng.integers(0, 256))
        size = [int(h + rng.integers(-2, 3)), int(w + rng.integers(-2, 3))]
        return "rle_decode", ({"size": size, "counts": bytes(counts)},), None  # may be valid
    return "rle_decode", (rle,), False


def case_assignment(rng):
    cost = _float_array(rng, (int(rng.integers(0, 9)), int(rng.integers(0, 9)))).astype(np.float64)
    cost, bad = _maybe_mutate_array(rng, cost)
    maximize, bad2 = _scalar(rng, bool(rng.random() < 0.5))
    return "linear_assignment", (cost, maximize), bad or bad2


def case_overlay(rng):
    h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels, bad = _maybe_mutate_array(rng, rng.integers(0, 6, (h, w)).astype(np.int32))
    alpha, bad2 = _scalar(rng, float(rng.uniform(0, 1)))
    return "overlay", (image, labels, alpha, bool(rng.random() < 0.5)), bad or bad2


CASES: tuple[Callable, ...] = (
    case_panoptic,
    case_prompt,
    case_letterbox,
    case_boxes,
    case_rle_encode,
    case_rle_decode,
    case_assignment,
    case_overlay,
)


def _equal(a, b) -> bool:
    if isinstance(a, tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        if a.dtype.names:
            return a.shape == b.shape and all(
                np.allclose(a[n], b[n], atol=1e-6) for n in a.dtype.names
            )
        return a.shape == b.shape and (
            np.array_equal(a, b) if a.dtype.kind != "f" else np.allclose(a, b, atol=1e-6)
        )
    return a == b


def _call(fn, args) -> tuple[str, object]:
    try:
        return "ok", fn(*args)
    except InputError as e:
        return "input_error", e


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=20000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--twin", type=float, default=0.1, help="share of calls also run in numpy")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    counts: Counter = Counter()
    t0 = time.perf_counter()
    for i in range(args.calls):
        name, call_args, _ = CASES[int(rng.integers(0, len(CASES)))](rng)
        try:
            kind, got = _call(getattr(CORE, name), call_args)
        except Exception as e:  # noqa: BLE001 - the fuzzer's point: any non-InputError is a finding
            print(f"FINDING seed={args.seed} call={i} {name}: {type(e).__name__}: {e}")
            return 1
        counts[(name, kind)] += 1
        if rng.random() < args.twin:
            try:
                tkind, want = _call(getattr(twin, name), call_args)
            except Exception as e:  # noqa: BLE001 - as above, for the numpy twin
                print(f"FINDING seed={args.seed} call={i} numpy {name}: {type(e).__name__}: {e}")
                return 1
            if tkind != kind or (kind == "ok" and not _equal(got, want)):
                print(f"FINDING seed={args.seed} call={i} {name}: C++ {kind} vs numpy {tkind}")
                return 1
            counts["twin_checked"] += 1
    dt = time.perf_counter() - t0
    for (name, kind), n in sorted((k, v) for k, v in counts.items() if isinstance(k, tuple)):
        print(f"{name:18s} {kind:12s} {n:9d}")
    print(
        f"{args.calls} calls ({counts['twin_checked']} also against numpy) in {dt:.1f} s, 0 findings"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
