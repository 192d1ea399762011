"""Multi-head attention with packed input projections (``nn.MultiheadAttention`` names) and
the decoder FFN. Written with plain matmul/softmax so it traces and exports everywhere."""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["FFN", "Attention"]


class Attention(nn.Module):
    """Multi-head attention, batch first. Parameters: ``in_proj_weight`` (3D x D),
    ``in_proj_bias`` (3D), ``out_proj`` (D -> D), as in ``nn.MultiheadAttention``."""

    def __init__(self, *, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.dim = dim
        self.num_heads = num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: Tensor) -> Tensor:
        # B x L x D -> B x heads x L x D/heads
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.dim // self.num_heads).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        """query: B x Nq x D, key/value: B x Nk x D -> B x Nq x D."""
        wq, wk, wv = self.in_proj_weight.chunk(3, dim=0)
        bq, bk, bv = self.in_proj_bias.chunk(3, dim=0)
        q = self._heads(nn.functional.linear(query, wq, bq))
        k = self._heads(nn.functional.linear(key, wk, bk))
        v = self._heads(nn.functional.linear(value, wv, bv))
        attn = torch.matmul(q, k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
        out = torch.matmul(attn.softmax(dim=-1), v)  # B x heads x Nq x D/heads
        b, _, n, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, self.dim))

    def forward_self_only(self, x: Tensor) -> Tensor:
        """Self-attention where each query may attend only to itself (prompt queries).

        The softmax over a single key is 1, so the result is exactly out_proj(v_proj(x)).
        x: B x N x D -> B x N x D.
        """
        _, _, wv = self.in_proj_weight.chunk(3, dim=0)
        _, _, bv = self.in_proj_bias.chunk(3, dim=0)
        return self.out_proj(nn.functional.linear(x, wv, bv))


class FFN(nn.Module):
    """x + fc2(relu(fc1(x)))."""

    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """B x N x D -> B x N x D."""
        return x + self.fc2(self.act(self.fc1(x)))
