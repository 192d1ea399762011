"""The habits a Python + C++ project is expected to have: a LICENSE that says what
pyproject.toml says and ships in the sdist and the wheel, a ``py.typed`` marker in the wheel,
a pre-commit configuration that runs offline with the environment's own tools, and a
``.clang-format`` for csrc/."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
BIN = Path(sys.executable).parent  # the environment's ruff, mypy, clang-format


# ------------------------------------------------------------------ LICENSE
def test_license_is_the_apache_2_text_pyproject_names():
    project = PYPROJECT["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression (PEP 639)
    assert project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "Copyright 2026 rapsam-edge authors" in text
    assert "[yyyy]" not in text


# ------------------------------------------------------------------ what the packages carry
def _backend(call: str, out: Path, settings: dict[str, object]) -> str:
    """Runs ``scikit_build_core.build.<call>(out, settings)`` in a fresh interpreter from the
    repository root; returns the file name it made."""
    if importlib.util.find_spec("scikit_build_core") is None:
        pytest.skip("scikit-build-core (the build backend) is not installed")
    code = (
        "import sys; from scikit_build_core import build; "
        f"print(build.{call}(sys.argv[1], {settings!r}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def _metadata_licence_fields(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("License")]


def test_wheel_ships_py_typed_and_the_license(tmp_path):
    """The real backend builds the wheel; ``wheel.cmake=false`` leaves the compiled core out
    (minutes of C++), which changes nothing about the Python files and the metadata."""
    name = _backend(
        "build_wheel", tmp_path, {"wheel.cmake": "false", "build-dir": str(tmp_path / "b")}
    )
    with zipfile.ZipFile(tmp_path / name) as whl:
        names = set(whl.namelist())
        dist_info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = whl.read(f"{dist_info}/METADATA").decode()
        licence = whl.read(f"{dist_info}/licenses/LICENSE").decode()
    assert "rapsam_edge/py.typed" in names
    assert "rapsam_edge/_core.pyi" in names  # the stubs the marker vouches for
    assert "rapsam_edge/apps/static/serve.html" in names  # `rapsam-edge serve`'s page
    # the ROS 2 message definitions, parameters and launch file (rapsam_edge.ros)
    for data in (
        "rapsam_edge/ros/msg/vision_msgs/Detection2DArray.msg",
        "rapsam_edge/ros/config/rapsam_edge.yaml",
        "rapsam_edge/ros/launch/rapsam_edge_launch.py",
    ):
        assert data in names, data
    assert _metadata_licence_fields(metadata) == [
        "License-Expression: Apache-2.0",
        "License-File: LICENSE",
    ]
    assert licence == (REPO / "LICENSE").read_text(encoding="utf-8")


def test_sdist_ships_the_license_and_py_typed(tmp_path):
    """The sdist with models/ left out (its weights would only slow the test down)."""
    exclude = [*PYPROJECT["tool"]["scikit-build"]["sdist"]["exclude"], "models/"]
    name = _backend("build_sdist", tmp_path, {"sdist.exclude": exclude})
    with tarfile.open(tmp_path / name) as sdist:
        names = set(sdist.getnames())
        root = name.removesuffix(".tar.gz")
        member = sdist.extractfile(f"{root}/PKG-INFO")
        assert member is not None
        pkg_info = member.read().decode()
    assert {f"{root}/LICENSE", f"{root}/rapsam_edge/py.typed"} <= names
    assert _metadata_licence_fields(pkg_info) == [
        "License-Expression: Apache-2.0",
        "License-File: LICENSE",
    ]


def test_wheel_packages_cover_the_typed_package():
    assert PYPROJECT["tool"]["scikit-build"]["wheel"]["packages"] == ["rapsam_edge"]
    assert (REPO / "rapsam_edge" / "py.typed").is_file()


# ------------------------------------------------------------------ pre-commit
def _pre_commit_config() -> dict:
    yaml = pytest.importorskip("yaml")  # pre-commit's own dependency
    return yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))


def test_pre_commit_hooks_are_local_and_use_the_environments_tools():
    """Nothing to download (works offline), and the versions are the ones the `test` extra
    pins, so pre-commit and the tests cannot disagree."""
    config = _pre_commit_config()
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert set(hooks) == {"ruff", "ruff-format", "clang-format", "mypy"}
    assert {h["language"] for h in hooks.values()} == {"system"}
    assert hooks["mypy"]["pass_filenames"] is False  # the folders of [tool.mypy] files
    test_extra = {
        re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0]
        for req in PYPROJECT["project"]["optional-dependencies"]["test"]
    }
    assert {"ruff", "mypy", "pre-commit", "clang-format"} <= test_extra


_GOOD_PY = "def twice(x: int) -> int:\n    return 2 * x\n"
_GOOD_CPP = "namespace demo {\n\nint twice(int x) { return 2 * x; }\n\n}  // namespace demo\n"
#: the folders `mypy` checks (pyproject.toml's [tool.mypy] files, one home)
_MYPY_FOLDERS = tuple(Path(f).name for f in PYPROJECT["tool"]["mypy"]["files"])


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


def _run_pre_commit(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PRE_COMMIT_HOME": str(home),
        # any download would fail: the hooks must not need one
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
        "PIP_NO_INDEX": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_pre_commit_runs_offline_and_catches_each_kind_of_fault(tmp_path):
    """The repository's pre-commit config, pyproject.toml and .clang-format in a scratch git
    repository: clean files pass every hook; then an unformatted Python file, a type error
    in a mypy folder and an unformatted C++ file each fail their hook."""
    if importlib.util.find_spec("pre_commit") is None:
        pytest.skip("pre-commit is not installed (it is in the `test` extra)")
    for tool in ("ruff", "mypy", "clang-format"):
        if shutil.which(tool, path=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}") is None:
            pytest.skip(f"{tool} is not installed (it is in the `test` extra)")
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in (".pre-commit-config.yaml", "pyproject.toml", ".clang-format"):
        shutil.copy(REPO / name, repo / name)
    for folder in _MYPY_FOLDERS:
        (repo / "rapsam_edge" / folder).mkdir(parents=True)
        (repo / "rapsam_edge" / folder / "__init__.py").write_text(_GOOD_PY)
    (repo / "rapsam_edge" / "__init__.py").write_text("")
    (repo / "csrc").mkdir()
    (repo / "csrc" / "twice.cpp").write_text(_GOOD_CPP)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")

    clean = _run_pre_commit(repo, tmp_path / "home")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    for hook in ("ruff check", "ruff format", "clang-format (csrc/)", "mypy"):
        assert any(
            line.startswith(hook) and line.endswith("Passed") for line in clean.stdout.splitlines()
        ), (hook, clean.stdout)

    (repo / "rapsam_edge" / "profile" / "extra.py").write_text("x=[1,2]\n")
    (repo / "rapsam_edge" / "runtime" / "__init__.py").write_text(
        _GOOD_PY + "\n\ny: int = twice('a')\n"
    )
    (repo / "csrc" / "twice.cpp").write_text(_GOOD_CPP.replace("{ return", "{return"))
    _git(repo, "add", "-A")
    dirty = _run_pre_commit(repo, tmp_path / "home")
    assert dirty.returncode != 0
    failed = {line.split(".")[0] for line in dirty.stdout.splitlines() if line.endswith("Failed")}
    assert failed == {"ruff format", "clang-format (csrc/)", "mypy"}, dirty.stdout
    assert 'Argument 1 to "twice" has incompatible type "str"' in dirty.stdout
    assert (repo / "rapsam_edge" / "profile" / "extra.py").read_text() == "x = [1, 2]\n"


# ------------------------------------------------------------------ .clang-format
def test_clang_format_style_is_valid_and_matches_the_python_line_length():
    clang_format = shutil.which("clang-format", path=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    if clang_format is None:
        pytest.skip("clang-format is not installed (it is in the `test` extra)")
    proc = subprocess.run(
        [clang_format, "--dump-config", str(REPO / "csrc" / "common.hpp")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    dumped = dict(
        line.split(":", 1) for line in proc.stdout.splitlines() if line and line[0].isalpha()
    )
    assert int(dumped["ColumnLimit"]) == PYPROJECT["tool"]["ruff"]["line-length"]
    assert int(dumped["IndentWidth"]) == 4
