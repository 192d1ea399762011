"""``rapsam-edge serve`` started for a test (tests/test_serve.py, tests/test_serve_browser.py):
the sample clip, the default bundle on ONNX Runtime, a free port."""

from __future__ import annotations

import subprocess
import sys

from rapsam_edge.assets import sample_clip

BUNDLE, BACKEND = "edge-s-synthetic", "ort"
WAIT = 60.0  # s: the most any one wait may take (a busy 2-core machine); never asserted


def start_cli(*extra: str) -> tuple[subprocess.Popen, str]:
    """``rapsam-edge serve`` on the sample clip, port 0: (process, the URL it printed)."""
    cmd = [sys.executable, "-m", "rapsam_edge.cli", "serve", "--source", str(sample_clip())]
    proc = subprocess.Popen(
        [*cmd, "--bundle", BUNDLE, "--backend", BACKEND, "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("serving "):
            return proc, line.split()[1]
    proc.kill()
    raise AssertionError(f"serve printed no URL: {proc.communicate(timeout=WAIT)[1][-2000:]}")
