"""`rapsam-edge info BUNDLE`: what a bundle holds and which backends can run it here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, nargs="?", help="bundle (default: the shipped one)")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def run(args: argparse.Namespace) -> int:
    from ..assets import default_bundle
    from ..bundle import load_bundle
    from ..runtime.registry import BACKENDS, unavailable_reasons

    path = args.bundle or default_bundle()
    bundle = load_bundle(path)  # verifies every checksum
    if args.json:
        print((Path(path) / "manifest.json").read_text())
        return 0
    print(f"bundle   {bundle.name} ({bundle.variant}) at {path}; checksums OK")
    print(
        f"input    long side {bundle.input.long_side}, pad to {bundle.input.pad_divisor}, "
        f"{bundle.input.layout} {bundle.input.dtype} {bundle.input.color_order}"
    )
    things = [c.name for c in bundle.classes if c.is_thing]
    stuff = [c.name for c in bundle.classes if not c.is_thing]
    print(f"classes  {len(bundle.classes)}: things {things}; stuff {stuff}")
    for name, g in bundle.graphs.items():
        ins = ", ".join(f"{t.name}{list(t.shape)}" for t in g.inputs)
        outs = ", ".join(f"{t.name}{list(t.shape)}" for t in g.outputs)
        print(f"graph    {name} [{g.precision}, {'/'.join(g.files)}]: {ins} -> {outs}")
    reasons = unavailable_reasons(bundle)
    for name in BACKENDS:
        state = "available" if reasons.get(name) is None else f"unavailable: {reasons[name]}"
        print(f"backend  {name:13s} {state}")
    if bundle.provenance:
        print("provenance", json.dumps(dict(bundle.provenance), indent=1, default=str))
    return 0
