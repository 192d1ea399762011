"""A tiny edge-xs "training run" (random weights, the dataset's classes, trained-at side 64)
and a 4-image 64 x 64 dataset: what the QAT tests quantize (imported by name: conftest puts
this folder on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path


def make_tiny_run(root: Path) -> tuple[Path, Path]:
    """-> (run directory, dataset root), both under ``root``."""
    import torch

    from rapsam_edge.data.classes import CLASSES
    from rapsam_edge.data.generate import make_dataset
    from rapsam_edge.model import build_model
    from rapsam_edge.model.io import save_model

    data = root / "data"
    make_dataset(
        data, seed=3, split="val", num_images=4, num_videos=0, image_size=(64, 64), progress=False
    )
    torch.manual_seed(0)
    model = build_model("edge-xs", num_classes=len(CLASSES))
    model.config["classes"] = [
        {"id": c.id, "name": c.name, "is_thing": c.is_thing} for c in CLASSES
    ]
    run = root / "run"
    run.mkdir()
    save_model(model, run)
    (run / "train_config.json").write_text(json.dumps({"image_size": 64}))
    return run, data
