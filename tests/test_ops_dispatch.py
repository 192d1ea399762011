"""The ops dispatcher: stable public functions, the observable numpy fallback (warning, log
line, original error kept), the version check against stale builds, RAPSAM_EDGE_OPS /
RAPSAM_EDGE_THREADS handling, set_num_threads and info(). Failure modes run in subprocesses
with the core blocked (a sys.meta_path finder) or replaced by a fake of another version."""

from __future__ import annotations

import inspect
import json
import os
import pickle
import subprocess
import sys
import timeit

import numpy as np
import pytest

import rapsam_edge
import rapsam_edge.errors
import rapsam_edge.ops as ops
from rapsam_edge import _core  # a missing core must fail these tests, not skip them
from rapsam_edge.errors import ConfigError, CoreUnavailableError
from rapsam_edge.ops import _numpy

BLOCK_CORE = """
import sys
class _BlockCore:
    def find_spec(self, name, path=None, target=None):
        if name == "rapsam_edge._core":
            raise {exc}("rapsam_edge._core is blocked in this test")
sys.meta_path.insert(0, _BlockCore())
"""
FAKE_CORE = """
import sys, types
fake = types.ModuleType("rapsam_edge._core")
fake.__version__ = "0.0.1"
sys.modules["rapsam_edge._core"] = fake
"""
# records the warnings and the log lines of `import rapsam_edge.ops`, then prints a summary
REPORT = """
import json, logging, warnings
records = []
class _Keep(logging.Handler):
    def emit(self, record):
        records.append((record.name, record.levelname, record.getMessage()))
logging.getLogger().addHandler(_Keep())
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    import rapsam_edge.ops as ops
    boxes = ops.masks_to_boxes(np.eye(4, dtype=bool)).tolist()
    impl, threads, info = ops.implementation(), ops.num_threads(), ops.info()
    if ops.core_error() is not None:
        ops.use("auto")  # falls back again, without a second report
err = ops.core_error()
print(json.dumps({
    "impl": impl,
    "warnings": [(w.category.__name__, str(w.message)) for w in caught],
    "logs": records,
    "error": None if err is None else [type(err).__name__, str(err)],
    "boxes": boxes,
    "threads": threads,
    "info": info,
}))
"""

# `import rapsam_edge.ops` fails: prints the exception's classes, its message, its cause
IMPORT_FAILS = """
try:
    import rapsam_edge.ops
except Exception as e:
    print(" ".join(c.__name__ for c in type(e).__mro__))
    print(e)
    print(type(e.__cause__).__name__, "|", e.__cause__)
"""


def run_python(code: str, *flags: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in (ops.ENV_VAR, ops.THREADS_ENV_VAR)}
    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=120,
    )


def report(prefix: str = "", **env: str) -> dict:
    proc = run_python(prefix + REPORT, **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


# ---------------------------------------------------------------- stable dispatchers
@pytest.fixture
def restore_impl():
    before = ops.implementation()
    yield
    ops.use(before)


def test_function_imported_before_use_follows_it(restore_impl, monkeypatch):
    from rapsam_edge.ops import masks_to_boxes  # imported before the switch

    calls = []
    twin = _numpy.masks_to_boxes

    def spy(masks):
        calls.append(masks.shape)
        return twin(masks)

    monkeypatch.setattr(_numpy, "masks_to_boxes", spy)  # what use("numpy") will pick up
    mask = np.zeros((5, 6), bool)
    mask[1:3, 2:5] = True
    ops.use("numpy")
    assert masks_to_boxes(mask).tolist() == [2, 1, 5, 3]
    assert calls, "the early import did not run the numpy twin after use('numpy')"
    calls.clear()
    ops.use("cpp")
    assert masks_to_boxes(mask).tolist() == [2, 1, 5, 3]
    assert not calls, "the early import still runs numpy after use('cpp')"


def test_dispatchers_keep_the_twins_signature_doc_and_identity(restore_impl):
    for name in ops.OP_NAMES:
        op, twin = getattr(ops, name), getattr(_numpy, name)
        assert inspect.signature(op) == inspect.signature(twin), name
        assert op.__doc__ == twin.__doc__ and op.__name__ == name
        assert op.__module__ == "rapsam_edge.ops"
        assert pickle.loads(pickle.dumps(op)) is op  # multiprocessing can ship it
        ops.use("numpy")
        assert getattr(ops, name) is op  # use() never rebinds the module's names
        ops.use("cpp")
        assert getattr(ops, name) is op


def test_dispatch_overhead_is_negligible(restore_impl):
    ops.use("cpp")
    mask = np.zeros((1, 2), bool)
    n = 20000
    direct = min(timeit.repeat(lambda: _core.masks_to_boxes(mask), number=n, repeat=5)) / n
    wrapped = min(timeit.repeat(lambda: ops.masks_to_boxes(mask), number=n, repeat=5)) / n
    # measured 0.2-0.3 us per call; the bound only catches a regression by orders of magnitude
    assert wrapped - direct < 5e-6, (wrapped, direct)


def test_use_rejects_unknown_names(restore_impl):
    with pytest.raises(ConfigError, match="unknown ops implementation 'fortran'"):
        ops.use("fortran")
    with pytest.raises(ValueError, match="unknown ops implementation"):  # ConfigError is one
        ops.use("")
    ops.use(" NumPy ")
    assert ops.implementation() == "numpy"


# ---------------------------------------------------------------- in-process state
def test_core_loaded_and_matches_the_package():
    assert ops.core_available() and ops.core_error() is None
    assert _core.__version__ == rapsam_edge.__version__ == "0.1.0"


def test_num_threads_follows_the_setting(restore_impl):
    before = _core.get_num_threads()
    try:
        ops.use("cpp")
        ops.set_num_threads(3)
        assert ops.num_threads() == _core.get_num_threads() == 3
        ops.use("numpy")
        assert ops.num_threads() == 1  # the twins are single-threaded
        ops.set_num_threads(2)  # still configures the core
        assert _core.get_num_threads() == 2
    finally:
        _core.set_num_threads(before)


def test_info(restore_impl):
    ops.use("cpp")
    info = ops.info()
    assert info["implementation"] == "cpp"
    assert info["core_version"] == info["package_version"] == rapsam_edge.__version__
    assert info["threads"] == ops.num_threads() == info["core_threads"] >= 1
    assert info["cores"] >= 1 and info["core_error"] is None
    assert info["compiler"] and info["arch"] and isinstance(info["simd"], str)
    assert "-ffp-contract=off" in info["cxx_flags"]
    json.dumps(info)  # printable as JSON by `rapsam-edge info`
    ops.use("numpy")
    assert ops.info()["implementation"] == "numpy" and ops.info()["threads"] == 1


# ---------------------------------------------------------------- fallback, in subprocesses
def test_missing_core_falls_back_loudly_once():
    out = report(BLOCK_CORE.format(exc="ImportError"))
    assert out["impl"] == "numpy" and out["boxes"] == [0, 0, 4, 4]
    assert out["error"] == ["ImportError", "rapsam_edge._core is blocked in this test"]
    assert [w[0] for w in out["warnings"]] == ["CoreFallbackWarning"]
    message = out["warnings"][0][1]
    for part in ("numpy twins", "20-100x slower", "blocked in this test", "pip install ."):
        assert part in message, part
    ops_logs = [r for r in out["logs"] if r[0] == "rapsam_edge.ops"]
    assert len(ops_logs) == 1 and ops_logs[0][1] == "WARNING"
    assert "\n" not in ops_logs[0][2] and "blocked in this test" in ops_logs[0][2]
    assert out["threads"] == 1
    info = out["info"]
    assert info["implementation"] == "numpy" and info["core_version"] is None
    assert info["core_error"] == "ImportError: rapsam_edge._core is blocked in this test"


def test_any_exception_at_core_import_falls_back():
    out = report(BLOCK_CORE.format(exc="RuntimeError"))
    assert out["impl"] == "numpy"
    assert out["error"][0] == "RuntimeError"
    assert [w[0] for w in out["warnings"]] == ["CoreFallbackWarning"]


def test_the_warning_really_fires():
    """Under -W error::RuntimeWarning (pytest's `error` filter alike) the import fails."""
    code = BLOCK_CORE.format(exc="ImportError") + "import rapsam_edge.ops"
    proc = run_python(code, "-W", "error::RuntimeWarning")
    assert proc.returncode != 0
    assert "CoreFallbackWarning" in proc.stderr and "numpy twins" in proc.stderr


def test_stale_core_version_counts_as_a_failed_load():
    out = report(FAKE_CORE)
    assert out["impl"] == "numpy"
    assert out["error"][0] == "ImportError"
    assert "stale build" in out["error"][1] and "'0.0.1'" in out["error"][1]
    assert rapsam_edge.__version__ in out["error"][1]
    assert [w[0] for w in out["warnings"]] == ["CoreFallbackWarning"]


def test_explicit_numpy_is_silent():
    code = BLOCK_CORE.format(exc="ImportError") + (
        "import rapsam_edge.ops as ops\n"
        "print(ops.implementation(), type(ops.core_error()).__name__, ops.num_threads())\n"
    )
    proc = run_python(code, "-W", "error", **{ops.ENV_VAR: "numpy"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["numpy", "ImportError", "1"]
    assert proc.stderr == ""  # neither a warning nor a log line


def import_failure(code: str, **env: str) -> tuple[list[str], str, str]:
    """(exception classes, message, 'CauseClass | cause') of a failing `import rapsam_edge.ops`."""
    proc = run_python(code + IMPORT_FAILS, "-W", "error", **env)
    assert proc.returncode == 0 and proc.stdout, proc.stderr
    classes, message, cause = proc.stdout.strip().split("\n")
    return classes.split(), message, cause


def test_cpp_required_without_core_raises_chained():
    classes, message, cause = import_failure(
        BLOCK_CORE.format(exc="ImportError"), **{ops.ENV_VAR: "cpp"}
    )
    assert classes[0] == "CoreUnavailableError" and "ImportError" in classes
    assert cause == "ImportError | rapsam_edge._core is blocked in this test"
    assert "RAPSAM_EDGE_OPS=cpp" in message and "blocked in this test" in message


def test_use_cpp_without_core_raises_chained():
    code = BLOCK_CORE.format(exc="ImportError") + (
        "import warnings\n"
        "warnings.simplefilter('ignore')\n"
        "import rapsam_edge.ops as ops\n"
        "from rapsam_edge.errors import CoreUnavailableError\n"
        "try:\n"
        "    ops.use('cpp')\n"
        "except CoreUnavailableError as e:\n"
        "    print(type(e.__cause__).__name__, e.__cause__ is ops.core_error(), ops.implementation())\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ImportError", "True", "numpy"]
    assert issubclass(CoreUnavailableError, ImportError)


@pytest.mark.parametrize("value", ["fortran", "c++", "1"])
def test_invalid_ops_env_is_a_config_error(value):
    classes, message, _ = import_failure("", **{ops.ENV_VAR: value})
    assert classes[:3] == ["ConfigError", "InputError", "RapsamEdgeError"]
    assert message == f"RAPSAM_EDGE_OPS must be auto, cpp or numpy, got {value!r}"


@pytest.mark.parametrize("value", ["", " CPP ", "Numpy", "auto"])
def test_valid_ops_env_values(value):
    out = report(**{ops.ENV_VAR: value})
    expected = "numpy" if value.strip().lower() == "numpy" else "cpp"
    assert out["impl"] == expected and out["warnings"] == []


# ---------------------------------------------------------------- RAPSAM_EDGE_THREADS
def test_threads_env_sets_the_core_threads():
    out = report(**{ops.THREADS_ENV_VAR: "3"})
    assert out["impl"] == "cpp" and out["threads"] == 3
    assert out["info"]["core_threads"] == 3 and out["info"]["RAPSAM_EDGE_THREADS"] == "3"
    out = report(**{ops.THREADS_ENV_VAR: "3", ops.ENV_VAR: "numpy"})
    assert out["threads"] == 1 and out["info"]["core_threads"] == 3


def test_threads_env_default_is_the_usable_cores():
    out = report(**{ops.THREADS_ENV_VAR: ""})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert out["threads"] == out["info"]["cores"] == min(cores, ops.MAX_THREADS)


def test_threads_env_respects_the_cpu_affinity():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("no sched_setaffinity here")
    cpu = sorted(os.sched_getaffinity(0))[0]
    code = f"import os; os.sched_setaffinity(0, {{{cpu}}})\n" + REPORT
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["threads"] == 1


@pytest.mark.parametrize("value", ["0", "-2", "abc", "2.5", "257", "1e3"])
def test_invalid_threads_env_is_a_config_error(value):
    classes, message, _ = import_failure("", **{ops.THREADS_ENV_VAR: value})
    assert classes[0] == "ConfigError"
    assert message == f"RAPSAM_EDGE_THREADS must be an integer in [1, 256], got {value!r}"


def test_core_checks_the_threads_env_too():
    """Loaded on its own (no rapsam_edge.ops first), the core's import fails with the same
    ConfigError as cause."""
    code = f"""
import importlib.util, sys, types
pkg = types.ModuleType("rapsam_edge")
pkg.__path__ = []
sys.modules["rapsam_edge"] = pkg
spec = importlib.util.spec_from_file_location("rapsam_edge.errors", {rapsam_edge.errors.__file__!r})
errors = sys.modules["rapsam_edge.errors"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(errors)
spec = importlib.util.spec_from_file_location("rapsam_edge._core", {_core.__file__!r})
try:
    core = sys.modules["rapsam_edge._core"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)  # pybind11 3: multi-phase init, the module runs here
except ImportError as e:
    print(type(e.__cause__).__name__, "|", e.__cause__)
else:
    print("imported", core.__version__, core.get_num_threads())
"""
    proc = run_python(code, **{ops.THREADS_ENV_VAR: "many"})
    assert proc.returncode == 0 and proc.stdout, proc.stderr
    name, message = (p.strip() for p in proc.stdout.split("|"))
    assert name == "ConfigError"
    assert message == "RAPSAM_EDGE_THREADS must be an integer in [1, 256], got 'many'"
    proc = run_python(code, **{ops.THREADS_ENV_VAR: "2"})
    assert proc.stdout.split() == ["imported", rapsam_edge.__version__, "2"], proc.stderr


def test_all_is_a_literal_that_names_every_op():
    """``ops.__all__`` is written out (static tools read it); it holds every op of OP_NAMES
    and only names the module defines."""
    assert set(ops.OP_NAMES) <= set(ops.__all__)
    assert all(hasattr(ops, name) for name in ops.__all__)
    assert "kernel" not in ops.__all__  # internal: the unchecked kernels


def test_public_ops_show_their_parameters_and_their_return_type():
    """An op's signature: the checks' parameters (names, defaults), the kernel's return type
    (not the checks' normalised-argument tuple)."""
    sig = inspect.signature(ops.letterbox)
    assert list(sig.parameters)[:2] == ["image", "size"]
    assert sig.return_annotation == "tuple[np.ndarray, float, tuple[int, int]]"
    for name in ops.__all__:
        fn = getattr(ops, name)
        if callable(fn) and hasattr(ops._numpy, f"_{name}"):
            kernel = inspect.signature(getattr(ops._numpy, f"_{name}"))
            assert inspect.signature(fn).return_annotation == kernel.return_annotation, name
