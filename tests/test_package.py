"""Package-level promises: the runtime half never imports torch, the ops dispatcher works."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import rapsam_edge.ops as ops
from rapsam_edge.contract.version import package_version
from rapsam_edge.ops import _numpy

BLOCK_TORCH = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, _Block())
"""


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def test_import_does_not_import_torch():
    code = "import sys, rapsam_edge, rapsam_edge.ops; print('torch' in sys.modules)"
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_runtime_works_with_torch_blocked():
    code = BLOCK_TORCH + (
        "import numpy as np, rapsam_edge.ops as ops\n"
        "m = np.zeros((4, 5), bool); m[1:3, 2:4] = True\n"
        "print(ops.masks_to_boxes(m).tolist())\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[2, 1, 4, 3]"


def test_dispatcher_switches_between_implementations():
    before = ops.implementation()
    letterbox = ops.letterbox  # a stable function: use() switches what it calls
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    try:
        ops.use("numpy")
        assert ops.implementation() == "numpy" and ops.num_threads() == 1
        expected = _numpy.letterbox(image, 8)[0]
        np.testing.assert_array_equal(letterbox(image, 8)[0], expected)
        if ops.core_available():
            ops.use("cpp")
            assert ops.implementation() == "cpp" and ops.letterbox is letterbox
            np.testing.assert_array_equal(letterbox(image, 8)[0], expected)
        with pytest.raises(ValueError, match="unknown ops implementation"):
            ops.use("fortran")
    finally:
        ops.use(before)


def test_env_var_forces_numpy():
    proc = run_python(
        "import rapsam_edge.ops as o; print(o.implementation())", RAPSAM_EDGE_OPS="numpy"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "numpy"


def test_ci_requires_the_compiled_core():
    """Under RAPSAM_EDGE_OPS=cpp (as in CI) the compiled core must be the one in use."""
    if os.environ.get(ops.ENV_VAR) != "cpp":
        pytest.skip("only meaningful when RAPSAM_EDGE_OPS=cpp (CI sets it)")
    assert ops.core_available() and ops.core_error() is None
    assert ops.implementation() == "cpp"
    assert ops.info()["core_version"] == ops.info()["package_version"]


def test_segment_dtype_is_shared():
    assert ops.SEGMENT_DTYPE.names == ("id", "class", "query", "score", "area", "is_thing")
    empty = _numpy.panoptic_fuse(
        np.zeros((1, 3), np.float32),
        np.zeros((1, 4, 4), np.float32),
        (4, 4),
        (8, 8),
        np.array([True, False]),
    )[1]
    assert empty.dtype == ops.SEGMENT_DTYPE


# ---------------------------------------------------------------- what the wheel carries
def _cmake() -> str:
    import shutil

    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    return cmake


def test_wheel_bundles_leave_out_the_training_weights(tmp_path):
    """CMakeLists.txt installs each shipped bundle with cmake/contract.cmake's
    rapsam_install_bundle: without the torch weights (manifest "weights" file and config),
    with a manifest that no longer lists them, so the installed copy still verifies."""
    from pathlib import Path

    from rapsam_edge.assets import DEFAULT_BUNDLE
    from rapsam_edge.bundle import load_bundle

    repo = Path(__file__).resolve().parents[1]
    source = (
        repo / "models" / DEFAULT_BUNDLE
    )  # the source tree's copy: the installed one is stripped
    shipped = load_bundle(source)
    assert shipped.weights is not None, "the default bundle ships weights: nothing to test"
    project = tmp_path / "project"
    project.mkdir()
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.19)\nproject(probe LANGUAGES NONE)\n"
        f'include("{repo}/cmake/contract.cmake")\n'
        f'rapsam_install_bundle("{source}" models)\n'
    )
    cmake = _cmake()
    for args in (
        ["-S", str(project), "-B", str(tmp_path / "build")],
        ["--install", str(tmp_path / "build"), "--prefix", str(tmp_path / "prefix")],
    ):
        proc = subprocess.run([cmake, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    installed = tmp_path / "prefix" / "models" / DEFAULT_BUNDLE
    bundle = load_bundle(installed)  # every listed file present, every file listed, sha256s
    assert bundle.weights is None
    weights = set(shipped.weights.values())
    assert {p.name for p in installed.iterdir()} == {"manifest.json", *shipped.files} - weights
    assert set(bundle.files) == set(shipped.files) - weights
    assert bundle.manifest.to_dict() == {
        **shipped.manifest.to_dict(),
        "weights": None,
        "files": {k: v for k, v in sorted(shipped.files.items()) if k not in weights},
    }


def test_cmake_builds_release_when_no_build_type_is_given(tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    build = tmp_path / "build"
    proc = subprocess.run(
        [_cmake(), "-S", str(repo), "-B", str(build), "-DRAPSAM_BUILD_RUNTIME=OFF"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cache = (build / "CMakeCache.txt").read_text()
    assert "CMAKE_BUILD_TYPE:STRING=Release" in cache
    header = (build / "generated" / "rapsam_contract.hpp").read_text()
    assert "kScoreThreshold" in header and "kMaxThreads = 256;" in header
    # the prompt tracker's defaults, from their one home (contract.json), for the C++ twin
    from rapsam_edge.contract.shared import PROMPT_TRACKER_DEFAULTS as pt

    assert f"constexpr int kMaxOccluded = {pt['max_occluded']};" in header
    assert f"constexpr int kMinMaskPixels = {pt['min_mask_pixels']};" in header
    names = {
        "margin": "kMargin",
        "search_margin": "kSearchMargin",
        "max_box_growth": "kMaxBoxGrowth",
    }
    names.update(min_score="kMinScore", min_similarity="kMinSimilarity")
    for key, name in names.items():
        line = next(x for x in header.splitlines() if f"double {name} = " in x)
        assert float(line.split("= ")[1].rstrip(";")) == pt[key], line


# ---------------------------------------------------------------- a bad ops setting is loud, typed
BAD_SETTINGS = [
    ("RAPSAM_EDGE_THREADS", "0", "RAPSAM_EDGE_THREADS must be an integer in [1, 256], got '0'"),
    ("RAPSAM_EDGE_THREADS", "abc", "RAPSAM_EDGE_THREADS must be an integer in [1, 256]"),
    ("RAPSAM_EDGE_THREADS", "300", "RAPSAM_EDGE_THREADS must be an integer in [1, 256]"),
    ("RAPSAM_EDGE_OPS", "bogus", "RAPSAM_EDGE_OPS must be auto, cpp or numpy, got 'bogus'"),
]


@pytest.mark.parametrize(("var", "value", "message"), BAD_SETTINGS)
def test_a_bad_ops_setting_leaves_the_error_types_importable(var, value, message):
    """The error types and the contract import whatever the environment holds; the ops (and
    so the Segmenter) then raise the typed ConfigError, with its hint, where first needed."""
    code = (
        "import rapsam_edge, rapsam_edge.errors as errors, rapsam_edge.contract\n"
        "print(rapsam_edge.__version__)\n"
        "for load in ('import rapsam_edge.ops', 'from rapsam_edge import Segmenter'):\n"
        "    try:\n"
        "        exec(load)\n"
        "    except errors.ConfigError as e:\n"
        "        print(type(e).__name__, '|', e, '|', e.hint)\n"
        "    else:\n"
        "        print('no error')\n"
    )
    proc = run_python(code, **{var: value})
    assert proc.returncode == 0, proc.stderr
    version, *lines = proc.stdout.strip().splitlines()
    assert version == package_version()
    assert len(lines) == 2, proc.stdout
    for line in lines:
        name, text, hint = (p.strip() for p in line.split("|"))
        assert name == "ConfigError" and text.startswith(message), line
        assert f"unset {var}" in hint, line


def test_the_package_loads_the_segmenter_lazily():
    """``import rapsam_edge`` does not load the ops; ``rapsam_edge.Segmenter`` does."""
    code = (
        "import sys, rapsam_edge\n"
        "print('rapsam_edge.ops' in sys.modules, 'Segmenter' in dir(rapsam_edge))\n"
        "from rapsam_edge import ImageEmbedding, Segmenter\n"
        "from rapsam_edge.runtime import segmenter\n"
        "print('rapsam_edge.ops' in sys.modules, Segmenter is segmenter.Segmenter,\n"
        "      ImageEmbedding is segmenter.ImageEmbedding)\n"
        "try:\n"
        "    rapsam_edge.NoSuchName\n"
        "except AttributeError as e:\n"
        "    print(e)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == [
        "False True",
        "True True True",
        "module 'rapsam_edge' has no attribute 'NoSuchName'",
    ]
