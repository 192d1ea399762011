"""ONNX Runtime's quantizer logs one WARNING on the root logger for every weight it cannot
quantize per channel (``Axis 1 is out-of-range for weight '...' with rank 1``): the 1-D
scales and biases of the normalisation layers, which it then quantizes per tensor as it
should. On the shipped decoders that is ~100 identical lines per run. ``quiet_ort`` drops
exactly that known message while quantizing and counts it; ``summarize_quiet`` logs one
line with the count. Any other warning passes through unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

__all__ = ["KNOWN_HARMLESS", "quiet_ort", "summarize_quiet"]

log = logging.getLogger(__name__)

#: message pattern -> what it means (the summary line's wording)
KNOWN_HARMLESS = {
    re.compile(r"Axis -?\d+ is out-of-range for weight '.*' with rank 1$"): (
        "rank-1 weights (normalisation scales / biases) quantized per tensor instead of per "
        "channel (ORT's 'Axis N is out-of-range for weight' warning)"
    ),
}


class _Counter(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        msg = record.getMessage()
        for pattern, meaning in KNOWN_HARMLESS.items():
            if pattern.match(msg):
                self.counts[meaning] = self.counts.get(meaning, 0) + 1
                return False
        return True


@contextlib.contextmanager
def quiet_ort() -> Iterator[dict[str, int]]:
    """Drop (and count) ORT's known harmless quantizer warnings on the root logger while
    the block runs; yields {meaning: count}, filled when the block ends."""
    counter = _Counter()
    root = logging.getLogger()
    root.addFilter(counter)
    try:
        yield counter.counts
    finally:
        root.removeFilter(counter)


def summarize_quiet(counts: dict[str, int], graph: str | Path) -> None:
    """One INFO line per kind of silenced warning, with its count."""
    for meaning, n in counts.items():
        log.info("onnxruntime quantize_static %s: %d %s", Path(graph).name, n, meaning)
