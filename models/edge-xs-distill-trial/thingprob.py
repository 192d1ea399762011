"""Largest thing-class probability of any query per image (the probe behind the fourth and
fifth trials): torch, eval mode, the first 40 images of the seed-5 validation split
letterboxed to 320 px. The shipped thresholds keep a thing segment at score >= 0.8.

    python models/edge-xs-distill-trial/thingprob.py RUN [RUN ...]
"""

from __future__ import annotations

import glob
import sys

import cv2
import numpy as np
import torch

from rapsam_edge.model.io import load_model
from rapsam_edge.ops import letterbox


def main(runs: list[str]) -> None:
    files = sorted(glob.glob("data/val5/coco/val/*"))[:40]
    torch.set_num_threads(1)
    for run in runs:
        model = load_model(run).eval()
        things = [i for i, c in enumerate(model.config["classes"]) if c["is_thing"]]
        best = []
        with torch.no_grad():
            for f in files:
                img = cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB)
                x, _, _ = letterbox(img, 320)
                image = torch.from_numpy(x).permute(2, 0, 1)[None].float()
                out = model.decode_panoptic(model.encode(image))
                prob = out["cls_logits"][0].softmax(-1)[:, things]
                best.append(prob.max().item())
        b = np.array(best)
        print(
            f"{run}: largest thing-class probability per image: median {np.median(b):.2f}, "
            f"p90 {np.percentile(b, 90):.2f}, share of images >= 0.8: {(b >= 0.8).mean():.2f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
