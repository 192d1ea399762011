"""Matched Fourier position features: the pixel side (neck) and the prompt side agree, and a
kernel built linearly from a prompt's features peaks at that prompt."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rapsam_edge.model.fourier import grid_features, num_features, point_features  # noqa: E402
from rapsam_edge.model.variants import EDGE_FOURIER_CYCLES, build_model  # noqa: E402

CYCLES = EDGE_FOURIER_CYCLES


def test_grid_equals_points_at_pixel_centres() -> None:
    h, w = 5, 7
    grid = grid_features(torch.zeros(2, 3, h, w), CYCLES)
    assert grid.shape == (2, num_features(CYCLES), h, w)
    for i, j in [(0, 0), (4, 6), (2, 3)]:
        centre = torch.tensor([(j + 0.5) / w, (i + 0.5) / h])
        torch.testing.assert_close(grid[1, :, i, j], point_features(centre, CYCLES))


@pytest.mark.parametrize("seed", range(5))
def test_matched_kernel_peaks_in_the_prompts_cell(seed: int) -> None:
    # cos(w (x - cx)) = cos(w x) cos(w cx) + sin(w x) sin(w cx): the dot product of the two
    # sides is a sum of cosines centred on the prompt, largest where x = cx and y = cy.
    h = w = 40  # stride 8 at 320 px
    g = torch.Generator().manual_seed(seed)
    cxcy = torch.rand(2, generator=g)
    score = torch.einsum(
        "c,chw->hw", point_features(cxcy, CYCLES), grid_features(torch.zeros(1, 1, h, w), CYCLES)[0]
    )
    i, j = divmod(int(score.argmax()), w)
    assert abs(j - int(cxcy[0] * w)) <= 1 and abs(i - int(cxcy[1] * h)) <= 1


def test_edge_variants_use_them_and_reference_does_not() -> None:
    xs, r18 = build_model("edge-xs"), build_model("rapsam-r18")
    assert hasattr(xs.prompt_encoder, "fourier_proj")
    assert not hasattr(r18.prompt_encoder, "fourier_proj")
    extra = num_features(CYCLES)
    assert xs.neck.loc_conv.in_channels == 48 + 2 + extra
    assert r18.neck.loc_conv.in_channels == 128 + 2
