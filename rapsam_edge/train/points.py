"""Point sampling on mask logits (Mask2Former / PointRend style), to compute mask losses on
a few thousand points instead of every pixel."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def point_sample(maps: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``maps`` (B x C x H x W) at ``coords`` (B x P x 2, (x, y) in [0, 1]
    of the map's extent) -> B x C x P."""
    grid = (2.0 * coords - 1.0).unsqueeze(2)  # B x P x 1 x 2
    return F.grid_sample(maps, grid, mode="bilinear", align_corners=False).squeeze(3)


def uncertain_points(
    logits: torch.Tensor, num_points: int, *, oversample: float = 3.0, importance: float = 0.75
) -> torch.Tensor:
    """Importance sampling: K x 1 x h x w logits -> K x num_points x 2 coords, a fraction
    ``importance`` of them where |logit| is smallest (most uncertain), the rest uniform."""
    k = logits.shape[0]
    n_over = int(num_points * oversample)
    coords = torch.rand(k, n_over, 2, device=logits.device)
    uncertainty = -point_sample(logits, coords).abs().squeeze(1)  # K x n_over
    n_uncertain = int(importance * num_points)
    top = uncertainty.topk(n_uncertain, dim=1).indices
    picked = torch.gather(coords, 1, top.unsqueeze(-1).expand(-1, -1, 2))
    rest = torch.rand(k, num_points - n_uncertain, 2, device=logits.device)
    return torch.cat([picked, rest], dim=1)
