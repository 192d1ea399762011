"""The command line as a newcomer reads it: every option of every verb says what it does and
what it defaults to, every ``--help`` works without torch, and the defaults come from the one
place that holds them.

The rule for options (checked on each argparse action of each verb's parser):
- every option has a non-empty help text;
- a flag (takes no value), a required option and a required positional need not name a
  default;
- any other option with a default value shows it through ``%(default)s`` (argparse prints the
  real value, so the text cannot go stale);
- any other option whose default is None says in words what None means ("default: ...");
- no help is a placeholder: with its "(default ...)" part taken out, it still says in words
  what the option does (not nothing, not one bare name such as ``PretrainConfig.steps``), and
  its default is not named by code (``default None``, ``default: TrainConfig.variant``).

Then what every verb does with a bad value before any work: a numeric option is parsed by a
checked type (argparse's usage error, exit 2), and a path the user gives that does not exist
(or is the wrong kind) is one error line + hint, exit 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rapsam_edge.cli import COMMANDS, main

VERBS = sorted(COMMANDS)

BLOCK_TORCH = """
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision", "safetensors"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Block())
"""


def _parser(verb: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"rapsam-edge {verb}")
    importlib.import_module(COMMANDS[verb].module).add_arguments(parser)
    return parser


def _needs_no_default(action: argparse.Action) -> bool:
    flag = action.nargs == 0
    positional_required = not action.option_strings and action.nargs not in ("?", "*")
    return flag or action.required or positional_required


def _problems(verb: str, parser: argparse.ArgumentParser) -> list[str]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = "/".join(action.option_strings) or action.dest
        text = action.help or ""
        if not text.strip() or text == argparse.SUPPRESS:
            out.append(f"{verb} {name}: no help text")
        elif _needs_no_default(action):
            continue
        elif action.default is not None and "%(default)" not in text:
            out.append(f"{verb} {name}: default {action.default!r} not shown with %(default)s")
        elif action.default is None and "default" not in text:
            out.append(f"{verb} {name}: does not say what it does when not given")
        if text.strip() and _placeholder(text):
            out.append(f"{verb} {name}: placeholder help {text!r}")
    return out


def _placeholder(text: str) -> bool:
    """A help that, without its default part, says nothing in words (empty or one bare name
    such as ``PretrainConfig.steps``), or that names its default by code."""
    cut = text.rfind("(default")  # "(default X)", "(default: X)", "(default %(default)s)"
    words = (text[:cut] if cut >= 0 else text).strip(" .;:,")
    bare = re.fullmatch(r"[\w.%()-]*", words) is not None
    by_code = re.search(r"\bdefault:?\s+(None\b|[A-Z]\w*\.\w+)", text) is not None
    return bare or by_code


@pytest.mark.parametrize("verb", VERBS)
def test_every_option_has_help_and_shows_its_default(verb):
    assert _problems(verb, _parser(verb)) == []


def test_the_rule_catches_a_bare_option():
    p = argparse.ArgumentParser()
    p.add_argument("--a", default=3)
    p.add_argument("--b", default=3, help="the b count (default 3)")  # a literal can go stale
    p.add_argument("--c")
    p.add_argument("--d", help="the d thing")  # None: says nothing about what happens then
    p.add_argument("--e", help="PretrainConfig.steps (default 3000)")  # only the field's name
    p.add_argument("--f", help="(default None)")  # nothing in words
    p.add_argument("--g", help="student variant (default: TrainConfig.variant)")  # code
    p.add_argument("--h2", help="teacher run (default None)")  # None is not a meaning
    p.add_argument("--ok", default=3, help="ok count (default %(default)s)")
    p.add_argument("--ok-none", help="the bundle (default: the shipped one)")
    p.add_argument("--ok-required", required=True, help="the required input")
    p.add_argument("ok_positional", help="a positional input")
    p.add_argument("--flag", action="store_true")
    p.add_argument("--ok-flag", action="store_true", help="a flag")
    found = [f.split(":")[0] for f in _problems("x", p)]
    assert found == [
        "x --a",
        "x --b",
        "x --c",
        "x --d",
        "x --e",
        "x --f",
        "x --g",
        "x --h2",
        "x --flag",
    ]


@pytest.mark.parametrize("verb", VERBS)
def test_help_renders_the_defaults_and_no_python_repr(verb, capsys):
    with pytest.raises(SystemExit) as info:
        main([verb, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: rapsam-edge {verb}")
    assert "{'" not in text and '{"' not in text, text  # no dict printed as a default
    assert "%(" not in text


def test_make_data_help_names_each_splits_counts(capsys):
    from rapsam_edge.data.generate import DEFAULTS

    with pytest.raises(SystemExit):
        main(["make-data", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for split, (images, videos, length) in DEFAULTS.items():
        assert f"{split} {images}" in text and f"{split} {videos}" in text
        assert f"{split} {length}" in text


def test_every_help_works_without_torch():
    code = BLOCK_TORCH + (
        "import json\nfrom rapsam_edge.cli import COMMANDS, main\nout = {}\n"
        "for verb in COMMANDS:\n"
        "    try:\n        main([verb, '--help'])\n"
        "    except SystemExit as e:\n        out[verb] = e.code\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    out['--help'] = e.code\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    assert codes == {**{verb: 0 for verb in COMMANDS}, "--help": 0}
    assert "torch" not in proc.stderr


def test_train_defaults_to_the_shipped_default_models_variant(capsys):
    from rapsam_edge.bundle import load_bundle
    from rapsam_edge.train.config import TrainConfig

    shipped = load_bundle(None, verify=False).variant
    assert TrainConfig().variant == shipped == "edge-s"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert f"model's (default {shipped})" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("var", "value"),
    [("RAPSAM_EDGE_THREADS", "0"), ("RAPSAM_EDGE_THREADS", "abc"), ("RAPSAM_EDGE_OPS", "bogus")],
)
def test_a_bad_ops_setting_is_one_line_a_hint_and_exit_2(var, value):
    """`info` needs the ops: a bad setting is the error line + hint + exit 2, no traceback;
    `--help` (top level and a runtime verb's) needs no ops and still prints its help."""
    env = {**os.environ, var: value}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "rapsam_edge.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )

    proc = cli("info")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"rapsam-edge: error: {var} must be "
        + ("an integer in [1, 256]" if var.endswith("THREADS") else "auto, cpp or numpy")
        + f", got {value!r}",
        proc.stderr.splitlines()[1],
    ]
    assert proc.stderr.splitlines()[1].startswith(f"rapsam-edge: hint: unset {var}")
    for args in (["--help"], ["info", "--help"], ["run", "--help"]):
        proc = cli(*args)
        assert proc.returncode == 0 and "usage: rapsam-edge" in proc.stdout, (args, proc.stderr)


@pytest.mark.parametrize("config", ["TrainConfig", "PretrainConfig"])
def test_every_config_field_says_what_it_does_and_what_0_or_none_means(config):
    """The generated train / pretrain / distill flags take their help from the config's field
    comments: every field has one, a None default says what None means ("default: ..."),
    a 0 default says what 0 means ("0: ...")."""
    import dataclasses

    from rapsam_edge.commands.train import field_comments
    from rapsam_edge.train import config as module

    config_type = getattr(module, config)
    comments = field_comments(config_type)
    defaults = config_type()
    problems = []
    for f in dataclasses.fields(config_type):
        text, default = comments.get(f.name, ""), getattr(defaults, f.name)
        if f.name == "extra":
            continue
        if not text:
            problems.append(f"{f.name}: no comment")
        elif default is None and "default:" not in text:
            problems.append(f"{f.name}: does not say what None means")
        elif default == 0 and not isinstance(default, bool) and f.name != "seed":
            if "0:" not in text:  # (seed 0 is just a seed)
                problems.append(f"{f.name}: does not say what 0 means")
    assert problems == []


# ------------------------------------------------- bad values end in one line, exit 2
#: path options that name what a verb writes (checked elsewhere, e.g. profile's parents)
OUTPUTS = {"out", "json", "markdown", "plot", "export"}
#: options holding an input path, by dest, beside those typed Path
PATH_DESTS = {"bundle", "source", "checkpoint", "data", "classes", "config"}
PATH_DESTS |= {"init_weights", "init_trunk", "resume_from", "teacher", "weights", "calib", "val"}

#: (verb, option, argv): every input-path option of every verb, given a path that does not
#: exist ({missing}); {img} an image, {data} a make-data root (val split), {dir} an empty
#: directory, {file} an empty file
MISSING = [
    ("benchmark", "--bundle", ["--bundle", "{missing}", "--no-fresh"]),
    ("convert", "checkpoint", ["{missing}", "--class-embeddings", "{file}", "--out", "{dir}"]),
    ("convert", "--class-embeddings", ["{file}", "--class-embeddings", "{missing}"]),
    ("convert", "--classes", ["{file}", "--class-embeddings", "{file}", "--classes", "{missing}"]),
    ("convert", "--calib", ["{file}", "--class-embeddings", "{file}", "--calib", "{missing}"]),
    ("convert", "--val", ["{file}", "--class-embeddings", "{file}", "--val", "{missing}"]),
    ("demo", "--bundle", ["--bundle", "{missing}", "--out", "{dir}/o"]),
    ("demo", "--source", ["--source", "{missing}", "--out", "{dir}/o"]),
    ("distill", "--teacher", ["--data", "{data}", "--teacher", "{missing}"]),
    ("eval", "--bundle", ["--bundle", "{missing}", "--data", "{data}"]),
    ("eval", "--weights", ["--weights", "{missing}", "--data", "{data}"]),
    ("eval", "--data", ["--data", "{missing}"]),
    ("export", "--weights", ["--weights", "{missing}", "--out", "{dir}/b"]),
    ("export", "--classes", ["--weights", "{dir}", "--out", "{dir}/b", "--classes", "{missing}"]),
    (
        "export",
        "--provenance",
        ["--weights", "{dir}", "--out", "{dir}/b", "--provenance", "{missing}"],
    ),
    ("info", "bundle", ["{missing}"]),
    ("pretrain", "--teacher", ["--teacher", "{missing}", "--out", "{dir}/r"]),
    ("profile", "bundle", ["{missing}"]),
    ("profile", "--source", ["--source", "{missing}"]),
    (
        "quantize",
        "source",
        ["{missing}", "--to", "int8", "--backend", "ort", "--calib", "{data}", "--out", "{dir}/q"],
    ),
    (
        "quantize",
        "--calib",
        [
            "edge-xs-synthetic",
            "--to",
            "int8",
            "--backend",
            "ort",
            "--calib",
            "{missing}",
            "--out",
            "{dir}/q",
        ],
    ),
    (
        "quantize",
        "--val",
        [
            "edge-xs-synthetic",
            "--to",
            "int8",
            "--backend",
            "ort",
            "--calib",
            "{data}",
            "--val",
            "{missing}",
            "--out",
            "{dir}/q",
        ],
    ),
    ("run", "bundle", ["{missing}", "--source", "{img}", "--out", "{dir}/o"]),
    ("run", "--source", ["--source", "{missing}", "--out", "{dir}/o"]),
    ("serve", "--bundle", ["--bundle", "{missing}", "--source", "{img}"]),
    ("serve", "--source", ["--source", "{missing}"]),
    ("train", "--config", ["--config", "{missing}"]),
    ("train", "--data", ["--data", "{missing}"]),
    ("train", "--init-weights", ["--data", "{data}", "--init-weights", "{missing}"]),
    ("train", "--init-trunk", ["--data", "{data}", "--init-trunk", "{missing}"]),
    ("train", "--resume-from", ["--data", "{data}", "--resume-from", "{missing}"]),
    ("train", "--teacher", ["--data", "{data}", "--teacher", "{missing}"]),
    ("distill", "--config", ["--config", "{missing}"]),
    ("distill", "--data", ["--data", "{missing}"]),
    ("distill", "--init-weights", ["--data", "{data}", "--init-weights", "{missing}"]),
    ("distill", "--init-trunk", ["--data", "{data}", "--init-trunk", "{missing}"]),
    ("distill", "--resume-from", ["--data", "{data}", "--resume-from", "{missing}"]),
]
#: the same for a path of the wrong kind ({file} where a directory is needed and back)
WRONG_KIND = [
    ("convert", ["{dir}", "--class-embeddings", "{file}", "--out", "{dir}/w"]),
    ("eval", ["--data", "{file}"]),
    ("export", ["--weights", "{dir}", "--out", "{dir}/b", "--classes", "{dir}"]),
    ("run", ["--source", "{dir}", "--out", "{dir}/o"]),
    ("serve", ["--source", "{dir}"]),
    ("train", ["--data", "{file}"]),
]


def _input_path_options(verb: str) -> set[str]:
    out = set()
    for action in _parser(verb)._actions:
        if action.dest in OUTPUTS or isinstance(action, argparse._HelpAction):
            continue
        if action.type is Path or action.dest in PATH_DESTS:
            out.add(action.option_strings[0] if action.option_strings else action.dest)
    return out


def test_every_input_path_option_is_walked():
    """A new path option without a MISSING case fails here (the kind, not the instances)."""
    walked = {(verb, option) for verb, option, _ in MISSING}
    every = {(verb, option) for verb in VERBS for option in _input_path_options(verb)}
    assert every - walked == set()


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    import cv2
    import numpy as np

    from rapsam_edge.data.generate import make_dataset

    root = tmp_path_factory.mktemp("paths")
    cv2.imwrite(str(root / "img.png"), np.full((40, 50, 3), 90, np.uint8))
    (root / "file").write_text("")
    (root / "dir").mkdir()
    data = root / "data"
    make_dataset(data, seed=0, split="val", num_images=1, num_videos=0, progress=False)
    make_dataset(data, seed=0, split="train", num_images=1, num_videos=0, progress=False)
    return {
        "missing": str(root / "no" / "such-path"),
        "img": str(root / "img.png"),
        "data": str(data),
        "dir": str(root / "dir"),
        "file": str(root / "file"),
    }


def _one_line_exit_2(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert lines[0].startswith("rapsam-edge: error: ") and len(lines) <= 2, err
    assert len(lines) == 1 or lines[1].startswith("rapsam-edge: hint: "), err
    return lines[0]


@pytest.mark.parametrize(
    ("verb", "option", "argv"), MISSING, ids=[f"{v} {o}" for v, o, _ in MISSING]
)
def test_a_missing_input_path_is_one_line_and_exit_2(verb, option, argv, paths, capsys):
    line = _one_line_exit_2([verb, *(a.format(**paths) for a in argv)], capsys)
    assert paths["missing"] in line


@pytest.mark.parametrize(("verb", "argv"), WRONG_KIND, ids=[v for v, _ in WRONG_KIND])
def test_an_input_path_of_the_wrong_kind_is_one_line_and_exit_2(verb, argv, paths, capsys):
    line = _one_line_exit_2([verb, *(a.format(**paths) for a in argv)], capsys)
    assert "directory" in line or "file" in line


def _numeric_actions(verb: str):
    for action in _parser(verb)._actions:
        if action.type in (int, float) or getattr(action.type, "__name__", "") in ("int", "float"):
            yield action


def test_every_numeric_option_is_checked_at_parse_time():
    """No verb takes a bare int / float: each numeric option is parsed by a checked type
    (``commands.checks``) that refuses -1 (or, for floats, nan); every such type's bounds are
    in its message."""
    import math

    from rapsam_edge.apps import checks

    bare, accepted = [], []
    for verb in VERBS:
        for action in _numeric_actions(verb):
            name = f"{verb} {action.option_strings[0]}"
            if action.type in (int, float):
                bare.append(name)
                continue
            bad = "nan" if action.type is checks.finite_float else "-1"
            try:
                value = action.type(bad)
            except argparse.ArgumentTypeError:
                continue
            if not (isinstance(value, float) and math.isfinite(value)):
                accepted.append(f"{name} {bad}")
    assert bare == [] and accepted == []


BAD_NUMBERS = [
    ["make-data", "--seed", "0", "--out", "{dir}", "--num-images", "-5"],
    ["make-data", "--seed", "0", "--out", "{dir}", "--video-length", "0"],
    ["make-data", "--seed", "-1", "--out", "{dir}"],
    ["make-data", "--seed", "0", "--out", "{dir}", "--size", "0", "0"],
    ["make-data", "--seed", "0", "--out", "{dir}", "--size", "100000", "100000"],
    ["run", "--source", "{dir}/x.png", "--max-frames", "-3"],
    ["run", "--source", "{dir}/x.png", "--max-frames", "0"],
    ["demo", "--repeats", "0"],
    ["eval", "--data", "{dir}", "--max-images", "-1"],
    ["profile", "--iters", "0"],
    ["profile", "--input", "0x0"],
    ["benchmark", "--warmup", "-1"],
    [
        "quantize",
        "x",
        "--to",
        "int8",
        "--backend",
        "ort",
        "--calib",
        "c",
        "--out",
        "o",
        "--max-pq-drop",
        "nan",
    ],
    ["train", "--steps", "0"],
    ["train", "--lr", "inf"],
    ["pretrain", "--batch-size", "-2"],
    ["variants", "--size", "8", "8"],
]


@pytest.mark.parametrize("argv", BAD_NUMBERS, ids=[" ".join(a[:1] + a[-2:]) for a in BAD_NUMBERS])
def test_a_bad_number_is_a_usage_error_at_parse_time(argv, tmp_path, capsys):
    """argparse's usage error (exit 2, no traceback), before any work: nothing is written."""
    with pytest.raises(SystemExit) as info:
        main([a.format(dir=tmp_path) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        f"rapsam-edge {argv[0]}: error: argument "
    ), err
    assert list(tmp_path.iterdir()) == []


def test_make_data_prints_lines_not_a_dict(tmp_path, capsys):
    argv = ["make-data", "--seed", "0", "--out", str(tmp_path), "--split", "val"]
    argv += ["--num-images", "1", "--num-videos", "1", "--video-length", "2", "--size", "64", "96"]
    assert main([*argv, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "{" not in out, out
    assert "images   1 -> " in out and "videos   1 x 2 frames" in out and "64 x 96" in out


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"no_such_key": 1}'])
def test_a_bad_train_config_file_is_one_line_and_exit_2(text, tmp_path, capsys):
    path = tmp_path / "cfg.json"
    path.write_text(text)
    line = _one_line_exit_2(["train", "--config", str(path), "--data", str(tmp_path)], capsys)
    assert str(path) in line


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_a_bad_provenance_file_is_one_line_and_exit_2(text, tmp_path, capsys):
    path = tmp_path / "prov.json"
    path.write_text(text)
    argv = ["export", "--weights", str(tmp_path), "--out", str(tmp_path / "b")]
    line = _one_line_exit_2([*argv, "--provenance", str(path)], capsys)
    assert str(path) in line and not (tmp_path / "b").exists()


def test_distill_trains_the_small_student_unless_told(tmp_path):
    """`train` defaults to the shipped default model's variant; `distill`'s student stays
    DEFAULT_STUDENT (distilling edge-s into edge-s would be pointless) unless --student /
    --variant or the --config file names one."""
    from rapsam_edge.commands import distill
    from rapsam_edge.train.config import DEFAULT_STUDENT, shipped_default_variant

    assert DEFAULT_STUDENT != shipped_default_variant()
    parser = argparse.ArgumentParser()
    distill.add_arguments(parser)
    assert distill.student_config(parser.parse_args([])).variant == DEFAULT_STUDENT
    assert distill.student_config(parser.parse_args(["--student", "edge-s"])).variant == "edge-s"
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"variant": "edge-s"}))
    assert distill.student_config(parser.parse_args(["--config", str(config)])).variant == "edge-s"
    config.write_text(json.dumps({"steps": 5}))
    cfg = distill.student_config(parser.parse_args(["--config", str(config)]))
    assert (cfg.variant, cfg.steps) == (DEFAULT_STUDENT, 5)
