"""VMamba SS2D: four cross-scan routes on the grid, each its own SSM, merged back to row-major."""
import pytest
import torch

from infomamba.mixers import build_mixer

DIM, GRID = 16, (3, 5)


def test_routes_are_the_four_cross_scan_directions():
    m = build_mixer("vmamba", DIM)
    assert m.scans.directions == ("h", "h_flip", "v", "v_flip")
    assert [s.reverse for s in m.scans.ssms] == [False, True, False, True]
    assert all(s.conv is None for s in m.scans.ssms)  # the shared 2-D conv replaces the 1-D ones


def test_each_route_changes_the_output():
    torch.manual_seed(0)
    m = build_mixer("vmamba", DIM, d_state=4)
    x = torch.randn(1, GRID[0] * GRID[1], DIM)
    y, _ = m(x, None, GRID)
    for ssm in m.scans.ssms:
        with torch.no_grad():
            ssm.D.add_(1.0)
            ssm.x_proj.weight.mul_(2.0)
        assert not torch.allclose(m(x, None, GRID)[0], y)
        y = m(x, None, GRID)[0]


def test_refusals():
    with pytest.raises(ValueError, match="cannot be causal"):
        build_mixer("vmamba", DIM, causal=True)
    m = build_mixer("vmamba", DIM)
    with pytest.raises(ValueError, match="no padding"):
        m(torch.randn(1, 15, DIM), torch.zeros(1, 15, dtype=torch.bool), GRID)
