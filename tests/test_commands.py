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
