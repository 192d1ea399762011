"""Parity of the official path, measured: rapsam-r18 / -r50 with random weights and non-zero
DCN offsets, written as mmengine checkpoints (tests/official_ckpt.py), converted, exported with
each deformable form, then vs torch: encoder features at three untraced sizes (incl.
non-square), and through `Segmenter` (panoptic class labels per pixel, prompt masks) on
3 frames. Run from the repository root: `python benchmarks/official_parity.py`; writes
benchmarks/results/official/parity.json and .md."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

import numpy as np

from rapsam_edge.bundle import load_bundle
from rapsam_edge.deploy.bundle_writer import export_bundle
from rapsam_edge.model.convert import convert_file
from rapsam_edge.runtime import create_backend
from rapsam_edge.runtime.segmenter import Segmenter

TESTS = Path(__file__).resolve().parent.parent / "tests"
OUT = Path(__file__).resolve().parent / "results" / "official"


def _load(name: str, file: str):
    spec = importlib.util.spec_from_file_location(name, TESTS / file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    oc = _load("official_ckpt", "official_ckpt.py")
    t = _load("test_official_deploy", "test_official_deploy.py")
    rows = []
    tmp = Path(tempfile.mkdtemp())
    for variant, c, k in [("rapsam-r18", 5, 2), ("rapsam-r50", 155, 1)]:
        model, emb = t.deformable(variant, classes=c, prototypes=k)
        oc.write_mmengine_checkpoint(model, tmp / f"{variant}.pth")
        np.save(tmp / "e.npy", emb.numpy())
        names = [{"name": f"c{i}", "is_thing": i < c // 2} for i in range(c)]
        (tmp / "n.json").write_text(json.dumps(names))
        conv, vocab = convert_file(
            tmp / f"{variant}.pth", class_embeddings=tmp / "e.npy", classes=tmp / "n.json"
        )
        for form in ["gridsample", "deformconv"]:
            bundle = load_bundle(
                export_bundle(
                    conv,
                    tmp / f"{variant}-{form}",
                    name=variant,
                    classes=vocab,
                    input_size=320,
                    include_weights=True,
                    deform={"onnx": form, "openvino": form},
                )
            )
            for backend in ["ort-cpu", "openvino"]:
                enc = create_backend(bundle, "encoder", backend)
                rels = []
                for h, w in [(160, 224), (224, 160), (256, 320)]:
                    img = np.random.default_rng(h).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
                    ref = t._torch_graph(conv, "encoder", img)["feats"]
                    f = enc.run({enc.name_of("image"): img})[enc.name_of("feats")]
                    rels.append(float(np.abs(f - ref).max() / np.abs(ref).max()))
                agree, ious = [], []
                for seed in range(3):
                    rng = np.random.default_rng(10 + seed)
                    frame = rng.integers(0, 256, (240, 300, 3), dtype=np.uint8)
                    pts = [(30, 40), (150, 100), (280, 200), (10, 230)]
                    with (
                        Segmenter(bundle, backend="torch") as r,
                        Segmenter(bundle, backend=backend) as s,
                    ):
                        a, b = t.class_map(r.panoptic(frame)), t.class_map(s.panoptic(frame))
                        agree.append(float((a == b).mean()))
                        ma = r.prompt(r.set_image(frame), points=pts).masks
                        mb = s.prompt(s.set_image(frame), points=pts).masks
                        ious += [
                            float((x & y).sum() / max(1, (x | y).sum())) for x, y in zip(ma, mb)
                        ]
                row = {
                    "variant": variant,
                    "form": form,
                    "backend": backend,
                    "feat_max_rel_err": max(rels),
                    "label_agreement_min": min(agree),
                    "prompt_iou_min": min(ious),
                }
                rows.append(row)
                print(row, flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "parity.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "| model | deform form | backend | feature max rel. error (3 sizes) | panoptic label "
        "agreement (min of 3 frames) | prompt mask IoU (min of 12 masks) |",
        "|---|---|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r['variant']} | {r['form']} | {r['backend']} | {r['feat_max_rel_err']:.1e} | "
        f"{100 * r['label_agreement_min']:.2f} % | {r['prompt_iou_min']:.5f} |"
        for r in rows
    ]
    (OUT / "parity.md").write_text("# Official path parity vs torch\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
