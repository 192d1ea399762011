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

    def forward_feats(self, query: Tensor, feats: Tensor) -> Tensor:
        """Cross-attention of a few queries to channels-first features, with the key and value
        projections absorbed into the query side.

        Equal (to float rounding) to ``forward(query, f, f)`` with ``f = feats.transpose(1, 2)``,
        because for head h with projections ``Wk_h``, ``Wv_h`` (hd x D):

        * score(l) = q_h . (Wk_h f_l + bk_h) = (Wk_h^T q_h) . f_l + q_h . bk_h, and the last
          term does not depend on l, so the softmax drops it;
        * sum_l a_l (Wv_h f_l + bv_h) = Wv_h (sum_l a_l f_l) + bv_h, since sum_l a_l = 1.

        So the L x D features are never projected. For large L the cost is about
        2 x heads x Nq x L x D multiply-adds (scores and pooling), against
        2 x L x D x D (projecting the keys and values) + 2 x Nq x L x D (scores and pooling
        per head width), i.e. cheaper while Nq < D / (heads - 1): about 43 prompts for edge-s
        (D 128, 4 heads) and 36 for the reference (D 256, 8 heads). This is the weight
        absorption of DeepSeek-V2's multi-head latent attention (arXiv 2405.04434) applied to
        the prompt adapter, where a handful of prompts attend to thousands of feature tokens.

        Arguments:
          query: B x Nq x D.
          feats: B x D x L (channels first, as the decoder keeps them).
        Returns:
          B x Nq x D.
        """
        b, nq, d = query.shape[0], query.shape[1], self.dim
        heads, hd = self.num_heads, self.dim // self.num_heads
        wq, wk, wv = self.in_proj_weight.chunk(3, dim=0)
        bq, _, bv = self.in_proj_bias.chunk(3, dim=0)
        q = self._heads(nn.functional.linear(query, wq, bq))  # B x heads x Nq x hd
        # Query in feature space per head: (heads x Nq x hd) @ (heads x hd x D).
        qf = torch.matmul(q, wk.view(heads, hd, d)).reshape(b, heads * nq, d)
        attn = torch.matmul(qf, feats) * (hd**-0.5)  # B x heads*Nq x L
        pooled = torch.matmul(attn.softmax(dim=-1), feats.transpose(1, 2))  # B x heads*Nq x D
        # Value projection of the pooled features: (heads x Nq x D) @ (heads x D x hd).
        v = torch.matmul(pooled.view(b, heads, nq, d), wv.view(heads, hd, d).transpose(1, 2))
        v = v + bv.view(heads, 1, hd)
        return self.out_proj(v.transpose(1, 2).reshape(b, nq, d))

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
