"""K-Net ``KernelUpdator``: gated update of query kernels by mask-pooled features."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["KernelUpdator"]


class KernelUpdator(nn.Module):
    """Reference K-Net KernelUpdator with in = feat = out = ``dim`` (reference names)."""

    def __init__(self, *, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.dynamic_layer = nn.Linear(dim, 2 * dim)
        self.input_layer = nn.Linear(dim, 2 * dim)
        self.input_gate = nn.Linear(dim, dim)
        self.update_gate = nn.Linear(dim, dim)
        self.norm_in = nn.LayerNorm(dim)
        self.norm_out = nn.LayerNorm(dim)
        self.input_norm_in = nn.LayerNorm(dim)
        self.input_norm_out = nn.LayerNorm(dim)
        self.fc_layer = nn.Linear(dim, dim)
        self.fc_norm = nn.LayerNorm(dim)
        self.act = nn.ReLU()

    def forward(self, pooled: Tensor, queries: Tensor) -> Tensor:
        """pooled: B x N x D (mask-pooled features), queries: B x N x D -> B x N x D."""
        d = self.dim
        params = self.dynamic_layer(pooled)
        p_in, p_out = params[..., :d], params[..., d:]
        inputs = self.input_layer(queries)
        x_in, x_out = inputs[..., :d], inputs[..., d:]
        # Gates from the product of both inputs.
        g = x_in * p_in
        input_gate = self.input_norm_in(self.input_gate(g)).sigmoid()
        update_gate = self.norm_in(self.update_gate(g)).sigmoid()
        # Gated mix of the normalised feature and query paths.
        mixed = update_gate * self.norm_out(p_out) + input_gate * self.input_norm_out(x_out)
        return self.act(self.fc_norm(self.fc_layer(mixed)))
