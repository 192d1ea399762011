"""`rapsam-edge info BUNDLE`: what a bundle holds and which backends can run it here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bundle",
        nargs="?",
        help="bundle directory or shipped bundle name (default: the shipped one)",
    )
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def run(args: argparse.Namespace) -> int:
    from .. import ops
    from ..assets import shipped_bundles
    from ..bundle import load_bundle
    from ..contract.threads import default_threads
    from ..runtime.registry import BACKENDS, backend_class, unavailable_reasons

    bundle = load_bundle(args.bundle)  # resolves a path or a shipped name; verifies checksums
    if args.json:
        print((Path(bundle.root) / "manifest.json").read_text())
        return 0
    print(f"bundle   {bundle.name} ({bundle.variant}) at {bundle.root}; checksums OK")
    print(f"shipped  {', '.join(shipped_bundles()) or 'none found'}")
    print(f"threads  {default_threads()} per graph (RAPSAM_EDGE_THREADS overrides)")
    core = ops.info()
    print(
        f"ops      {core['implementation']} (core {core['core_version'] or 'not loaded'}, "
        f"{core['threads']} threads, {core['compiler']} {core['arch']} {core['build_type']})"
        + (f"; core failed: {core['core_error']}" if core["core_error"] else "")
    )
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
        if reasons.get(name) is None:
            cls = backend_class(name)
            mode = "concurrent calls" if cls.concurrent else "calls serialised"
            state = f"available ({cls.library_version()}; {mode})"
        else:
            state = f"unavailable: {reasons[name]}"
        print(f"backend  {name:13s} {state}")
    if bundle.provenance:
        print("provenance", json.dumps(dict(bundle.provenance), indent=1, default=str))
    return 0
