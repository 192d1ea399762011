"""Class heads, small MLP, mask product and mask pooling."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CosineClassifier", "LinearClassifier", "mask_pool", "mask_product", "mlp"]

# Reference: logit_scale buffer 4.6052 -> exp() ~= 100.
LOGIT_SCALE = math.exp(4.6052)


def mlp(dims: list[int]) -> nn.Sequential:
    """Linear-ReLU-...-Linear; with dims [a, b, c] gives keys 0 (a->b) and 2 (b->c)."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def mask_product(kernels: Tensor, feats: Tensor) -> Tensor:
    """kernels: B x N x D, feats: B x D x L -> mask logits B x N x L."""
    return torch.matmul(kernels, feats)


def mask_pool(mask_logits: Tensor, feats: Tensor) -> Tensor:
    """SUM of features over the hard masks: sum_l (sigmoid(M) > 0.5) * F.

    sigmoid(M) > 0.5 is computed as M > 0 (identical except for |M| < 6e-8, where float32
    sigmoid rounds to 0.5). No gradient flows through the mask (as in the reference).
    mask_logits: B x N x L, feats: B x D x L -> B x N x D.
    """
    hard = (mask_logits > 0).to(feats.dtype)
    return torch.matmul(hard, feats.transpose(1, 2))


class CosineClassifier(nn.Module):
    """Open-vocabulary head: MLP -> L2 normalise -> cosine against frozen class embeddings.

    logits = scale * max_p cos(proj(x), E[c, p]); a background column of 0 is appended
    (the reference appends an all-zero "background" embedding). ``hidden_layers`` = 2 gives
    the stage head (D-D-D-E, keys proj.0/2/4), 0 the object-adapter head (keys proj.0).
    """

    def __init__(self, *, dim: int, embed_dim: int, hidden_layers: int, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.proj = mlp([dim] * (hidden_layers + 1) + [embed_dim])

    def forward(self, x: Tensor, class_embed: Tensor | None) -> Tensor:
        """x: B x N x D, class_embed: C x P x E (unit rows) -> B x N x (C + 1)."""
        assert class_embed is not None
        e = F.normalize(self.proj(x), dim=-1)
        c, p, d = class_embed.shape
        cos = torch.matmul(e, class_embed.reshape(c * p, d).t())  # B x N x (C*P)
        cos = cos.unflatten(-1, (c, p)).amax(dim=-1)
        logits = cos * self.scale
        return torch.cat((logits, torch.zeros_like(logits[..., :1])), dim=-1)


class LinearClassifier(nn.Module):
    """Plain linear classifier for the edge variants: D -> C + 1 (last = no object)."""

    def __init__(self, *, dim: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, num_classes + 1)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.constant_(self.fc.bias, 0.0)

    def forward(self, x: Tensor, class_embed: Tensor | None = None) -> Tensor:
        """x: B x N x D -> B x N x (C + 1)."""
        del class_embed
        return self.fc(x)
