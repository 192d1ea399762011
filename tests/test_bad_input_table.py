"""The bad-input table (issue 15): every case at the runtime's boundary (frames, prompts,
settings, sources) and every op argument case of test_ops_bad_input, with its outcome.
docs/bad_input.md is generated from these tables and must match them:

    python tests/test_bad_input_table.py > docs/bad_input.md
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from rapsam_edge.errors import ConfigError, InputError, SourceError
from rapsam_edge.runtime.inputs import MAX_FRAME_PIXELS
from rapsam_edge.runtime.segmenter import Segmenter

DOC = Path(__file__).resolve().parent.parent / "docs" / "bad_input.md"
F = np.zeros((60, 80, 3), np.uint8)


def _ro(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def _frame_cases() -> dict[str, tuple[str, object, str]]:
    """id -> (what, frame, outcome); outcome "ok" or the InputError message fragment."""
    big = np.lib.stride_tricks.as_strided(np.zeros(3, np.uint8), (9000, 9000, 3), (0, 0, 1))
    return {
        "rgb": ("H x W x 3 uint8", F, "ok"),
        "tiny": ("1 x 1 x 3 uint8", np.zeros((1, 1, 3), np.uint8), "ok"),
        "one_row": ("1 x 640 x 3", np.zeros((1, 640, 3), np.uint8), "ok"),
        "one_column": ("480 x 1 x 3", np.zeros((480, 1, 3), np.uint8), "ok"),
        "extreme_aspect": ("8 x 4000 x 3", np.zeros((8, 4000, 3), np.uint8), "ok"),
        "grey_2d": ("grey H x W uint8 (replicated)", F[..., 0], "ok"),
        "grey_1ch": ("grey H x W x 1 uint8 (replicated)", F[..., :1], "ok"),
        "non_contiguous": ("every other column (a strided view)", F[:, ::2], "ok"),
        "fortran": ("Fortran-ordered", np.asfortranarray(F), "ok"),
        "read_only": ("read-only array", _ro(F), "ok"),
        "bgr_view": ("channel-reversed view", F[..., ::-1], "ok"),
        "rgba": ("H x W x 4 (RGBA)", np.zeros((60, 80, 4), np.uint8), "frame[..., :3]"),
        "two_channels": ("H x W x 2", np.zeros((60, 80, 2), np.uint8), "H x W x 3"),
        "batch": ("1 x H x W x 3 batch", F[None], "H x W x 3"),
        "vector": ("1-D array", np.zeros(30, np.uint8), "H x W x 3"),
        "scalar": ("0-D array", np.array(3, np.uint8), "H x W x 3"),
        "uint16": ("16-bit", F.astype(np.uint16), "uint8"),
        "int32": ("int32", F.astype(np.int32), "uint8"),
        "float32": ("float32 in [0, 1]", F.astype(np.float32), "uint8"),
        "float64": ("float64", F.astype(np.float64), "uint8"),
        "bool": ("bool", F.astype(bool), "uint8"),
        "int8": ("int8", F.astype(np.int8), "uint8"),
        "nan_float": ("float with NaN", np.full((60, 80, 3), np.nan, np.float32), "uint8"),
        "empty_rows": ("0 x W x 3", F[:0], "empty"),
        "empty_cols": ("H x 0 x 3", F[:, :0], "empty"),
        "empty_grey": ("0 x 0 grey", np.zeros((0, 0), np.uint8), "empty"),
        "huge": (f"9000 x 9000 (> MAX_FRAME_PIXELS = {MAX_FRAME_PIXELS})", big, "MAX_FRAME_PIXELS"),
        "list": ("nested Python list", F.tolist(), "numpy array"),
        "none": ("None", None, "numpy array"),
        "string": ("a file name string", "frame.png", "numpy array"),
        "bytes": ("encoded bytes", b"\x89PNG", "numpy array"),
    }


def _prompt_cases() -> dict[str, tuple[str, dict, str]]:
    """id -> (what, prompt kwargs on a 80 x 60 frame, outcome)."""
    return {
        "point": ("one point inside", {"points": [(10, 20)]}, "ok"),
        "point_edge": ("a point on the last pixel", {"points": [(79, 59)]}, "ok"),
        "points_array": ("P x 2 float array", {"points": np.array([[5.5, 6.5], [30, 40]])}, "ok"),
        "box": ("one box inside", {"boxes": [(5, 5, 40, 30)]}, "ok"),
        "box_partly_out": ("a box partly outside (clipped)", {"boxes": [(-10, -10, 40, 30)]}, "ok"),
        "points_and_boxes": (
            "points and boxes together",
            {"points": [(5, 5)], "boxes": [(1, 1, 9, 9)]},
            "ok",
        ),
        "max_prompts": ("256 prompts (max_prompts)", {"points": [(1, 1)] * 256}, "ok"),
        "point_outside": (
            "a point outside the frame",
            {"points": [(90, 10)]},
            "inside the 60 x 80",
        ),
        "point_negative": ("a negative point", {"points": [(-1, 10)]}, "inside the 60 x 80"),
        "point_nan": ("a NaN point", {"points": [(np.nan, 10)]}, "finite"),
        "point_inf": ("an infinite point", {"points": [(np.inf, 10)]}, "finite"),
        "point_3d": ("P x 3 points", {"points": [(1, 2, 3)]}, "P x 2"),
        "point_string": ("a non-number", {"points": [("a", 1)]}, "numbers"),
        "point_numeric_string": ("numbers as strings", {"points": [("5", "6")]}, "numbers"),
        "point_bool": ("bools", {"points": [(True, True)]}, "numbers"),
        "point_complex": ("complex numbers", {"points": np.array([[5 + 3j, 5]])}, "numbers"),
        "point_huge_int": (
            "a Python int beyond float range",
            {"points": [(10**400, 5)]},
            "numbers",
        ),
        "point_empty_3": ("0 x 3 points", {"points": np.zeros((0, 3))}, "P x 2"),
        "point_int64": ("int64 points", {"points": np.array([[5, 6]], np.int64)}, "ok"),
        "point_float16": ("float16 points", {"points": np.array([[5, 6]], np.float16)}, "ok"),
        "box_outside": (
            "a box entirely outside",
            {"boxes": [(100, 100, 120, 130)]},
            "overlap the 60 x 80",
        ),
        "box_left_of": (
            "a box left of the frame",
            {"boxes": [(-50, 5, -10, 30)]},
            "overlap the 60 x 80",
        ),
        "box_inverted": ("x1 < x0", {"boxes": [(10, 10, 5, 20)]}, "x1 > x0"),
        "box_zero_area": ("x1 == x0", {"boxes": [(10, 10, 10, 20)]}, "x1 > x0"),
        "box_nan": ("a NaN box", {"boxes": [(np.nan, 1, 5, 5)]}, "finite"),
        "box_huge_int": (
            "a Python int beyond float range",
            {"boxes": [(0, 0, 10**400, 10)]},
            "numbers",
        ),
        "box_3": ("P x 3 boxes", {"boxes": [(1, 2, 3)]}, "P x 4"),
        "nothing": ("no prompt", {}, "at least one point or box"),
        "empty_list": ("an empty point list", {"points": []}, "at least one point or box"),
        "too_many": ("257 prompts", {"points": [(1, 1)] * 257}, "max_prompts=256"),
    }


def _setting_cases() -> dict[str, tuple[str, dict, str]]:
    """id -> (what, Segmenter keyword arguments, outcome)."""
    return {
        "defaults": ("the defaults", {}, "ok"),
        "score_string": ("score_threshold='0.5'", {"score_threshold": "0.5"}, "score_threshold"),
        "score_above_1": ("score_threshold=1.5", {"score_threshold": 1.5}, "score_threshold"),
        "score_nan": ("score_threshold=NaN", {"score_threshold": float("nan")}, "score_threshold"),
        "overlap_negative": (
            "overlap_threshold=-0.1",
            {"overlap_threshold": -0.1},
            "overlap_threshold",
        ),
        "prompt_threshold_inf": (
            "prompt_threshold=inf",
            {"prompt_threshold": float("inf")},
            "prompt_threshold",
        ),
        "input_size_odd": (
            "input_size=100 (not a multiple of 32)",
            {"input_size": 100},
            "input_size",
        ),
        "input_size_zero": ("input_size=0", {"input_size": 0}, "input_size"),
        "input_size_float": ("input_size=320.0", {"input_size": 320.0}, "input_size"),
        "input_size_huge": ("input_size=65536", {"input_size": 65536}, "input_size"),
        "color_order": ("color_order='bgr' (lower case)", {"color_order": "bgr"}, "color_order"),
        "max_prompts_zero": ("max_prompts=0", {"max_prompts": 0}, "max_prompts"),
        "backend_unknown": ("backend='tpu'", {"backend": "tpu"}, "unknown backend"),
        "backend_partial_map": (
            "a backend mapping without every graph",
            {"backend": {"encoder": "ort-cpu"}},
            "exactly the graphs",
        ),
        "tracker_type": ("tracker='fast'", {"tracker": "fast"}, "tracker"),
    }


def _outcome(fn: Callable[[], object], expect: str) -> None:
    if expect == "ok":
        fn()
        return
    with pytest.raises(
        InputError,
        match=expect.replace("[", r"\[")
        .replace(".", r"\.")
        .replace("(", r"\(")
        .replace(")", r"\)"),
    ):
        fn()


@pytest.fixture(scope="module")
def seg(shipped_bundle) -> Segmenter:
    return Segmenter(shipped_bundle, "ort-cpu")


@pytest.mark.parametrize("case", list(_frame_cases()))
def test_frame(seg, case):
    _, frame, expect = _frame_cases()[case]
    _outcome(lambda: seg.panoptic(frame), expect)
    if expect == "ok":  # and the same rule at every entry point
        seg.prompt(seg.set_image(frame), points=[(0, 0)])
        seg.track(frame)


def test_grey_equals_its_rgb(seg):
    grey = np.random.default_rng(0).integers(0, 256, (60, 80), dtype=np.uint8)
    a = seg.panoptic(grey).panoptic_map
    b = seg.panoptic(np.repeat(grey[:, :, None], 3, axis=2)).panoptic_map
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", list(_prompt_cases()))
def test_prompt(seg, case):
    _, kwargs, expect = _prompt_cases()[case]
    emb = seg.set_image(F)
    _outcome(lambda: seg.prompt(emb, **kwargs), expect)


@pytest.mark.parametrize("case", list(_setting_cases()))
def test_setting(shipped_bundle, case):
    _, kwargs, expect = _setting_cases()[case]
    kwargs = dict(kwargs)
    backend = kwargs.pop("backend", "ort-cpu")
    if expect == "ok":
        Segmenter(shipped_bundle, backend, **kwargs).close()
    else:
        with pytest.raises(ConfigError, match=expect):
            Segmenter(shipped_bundle, backend, **kwargs)


def test_source_cases(seg, tmp_path):
    with pytest.raises(SourceError):
        next(seg.stream(tmp_path / "none.mp4"))
    with pytest.raises(SourceError):
        next(seg.stream(object()))
    with pytest.raises(ConfigError, match="max_frames"):
        next(seg.stream(iter([]), max_frames=-1))
    with pytest.raises(InputError, match="uint8"):
        next(seg.stream(iter([F.astype(np.float32)])))


def _ops_cases() -> dict[str, tuple[str, str]]:
    """id -> (op, the argument named): the op cases of test_ops_bad_input, the tracker's
    (``make_tracker`` settings and ``update`` arguments) included."""
    spec = importlib.util.spec_from_file_location(
        "ops_bad", Path(__file__).with_name("test_ops_bad_input.py")
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    cases = {k: (op, word) for k, (op, _, word) in mod.CASES.items()}
    cases |= {f"tr_{k}": ("make_tracker", name) for k, (name, _) in mod.BAD_SETTINGS.items()}
    cases |= {f"tr_{k}": ("make_tracker(...).update", c[-1]) for k, c in mod.BAD_UPDATES.items()}
    return cases


def render() -> str:
    lines = [
        "# Bad input: what each boundary accepts and refuses",
        "",
        "Generated from `tests/test_bad_input_table.py` (one test per row; "
        "`python tests/test_bad_input_table.py > docs/bad_input.md` rewrites this file). "
        '"accepted" rows run; every other row raises `rapsam_edge.errors.InputError` (a '
        "`ValueError`; `ConfigError` for settings) whose message contains the fragment shown.",
        "",
        "## Frames (`Segmenter.panoptic` / `set_image` / `track` / `stream`)",
        "",
        "| case | input | outcome |",
        "|---|---|---|",
    ]
    out = lambda e: "accepted" if e == "ok" else f"InputError: `{e}`"  # noqa: E731
    lines += [f"| {k} | {w} | {out(e)} |" for k, (w, _, e) in _frame_cases().items()]
    lines += [
        "",
        "## Prompts (`Segmenter.prompt` on an 80 x 60 frame)",
        "",
        "| case | input | outcome |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | {w} | {out(e)} |" for k, (w, _, e) in _prompt_cases().items()]
    lines += [
        "",
        "## Settings (`Segmenter(...)`)",
        "",
        "| case | input | outcome |",
        "|---|---|---|",
    ]
    lines += [
        f"| {k} | {w} | {'accepted' if e == 'ok' else f'ConfigError: `{e}`'} |"
        for k, (w, _, e) in _setting_cases().items()
    ]
    ops = _ops_cases()
    lines += [
        "",
        "## Post-processing ops (`rapsam_edge.ops`, C++ core and numpy twin alike)",
        "",
        "Each row raises `InputError` naming the argument, with the same message in both "
        "twins (`tests/test_ops_bad_input.py`).",
        "",
        "| case | op | argument named |",
        "|---|---|---|",
    ]
    lines += [f"| {k} | `{op}` | `{word}` |" for k, (op, word) in ops.items()]
    n = len(_frame_cases()) + len(_prompt_cases()) + len(_setting_cases()) + len(ops)
    lines += ["", f"{n} cases in all.", ""]
    return "\n".join(lines)


def test_docs_table_matches():
    assert DOC.read_text() == render(), (
        "regenerate: python tests/test_bad_input_table.py > docs/bad_input.md"
    )


if __name__ == "__main__":
    sys.stdout.write(render())
