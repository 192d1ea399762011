"""The training-only semantic loss: labels from the panoptic targets at feature resolution,
void cells ignored."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rapsam_edge.train.losses import semantic_loss  # noqa: E402


def _targets() -> list[dict]:
    masks = torch.zeros(2, 16, 16)
    masks[0, :, :8] = 1  # class 3 on the left half
    masks[1, :8, 8:] = 1  # class 1 on the top right quarter; bottom right is void
    return [{"classes": torch.tensor([3, 1]), "masks": masks}]


def test_right_labels_give_low_loss_and_wrong_ones_high() -> None:
    right = torch.zeros(1, 4, 4, 4)
    right[0, 3, :, :2] = 20
    right[0, 1, :2, 2:] = 20
    wrong = right.roll(1, dims=1)
    assert semantic_loss(right, _targets(), 1.0) < 1e-6
    assert semantic_loss(wrong, _targets(), 1.0) > 10


def test_void_cells_are_ignored() -> None:
    logits = torch.zeros(1, 4, 4, 4)
    logits[0, 3, :, :2] = 20
    logits[0, 1, :2, 2:] = 20
    logits[0, 0, 2:, 2:] = 50  # whatever is predicted on the void quarter costs nothing
    assert semantic_loss(logits, _targets(), 1.0) < 1e-6


def test_no_labelled_cell_gives_zero_with_gradient() -> None:
    logits = torch.randn(1, 4, 4, 4, requires_grad=True)
    loss = semantic_loss(
        logits,
        [{"classes": torch.zeros(0, dtype=torch.long), "masks": torch.zeros(0, 16, 16)}],
        2.0,
    )
    loss.backward()
    assert float(loss) == 0.0 and logits.grad is not None
