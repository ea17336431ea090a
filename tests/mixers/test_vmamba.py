"""VMamba SS2D: four cross-scan routes on the grid, each its own SSM, merged back to row-major."""
import pytest
import torch

from infomamba.layers.ssm import SelectiveSSM
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


def test_ssm_heads_gives_every_route_the_ssd_form():
    """ssm_heads=H: all four routes' SSMs have dt and A a head (dt_proj (H, R), A_log (H,)); a 1-D padded
    forward and backward run with no gradient to the padded tokens, a grid forward too; H must divide E.
    The loss reads the real positions only: a padded position's output is LN(0) = the LayerNorm bias, gated by
    its own z, so with a trained bias the padded outputs (which the contract leaves free) depend on padded z."""
    m, plain = build_mixer("vmamba", DIM, d_state=4, ssm_heads=4), build_mixer("vmamba", DIM, d_state=4)
    ssms = [s for s in m.modules() if isinstance(s, SelectiveSSM)]
    assert [(s.heads, s.dt_proj.out_features, tuple(s.A_log.shape)) for s in ssms] == [(4, 4, (4,))] * 4
    assert all(s.heads is None and s.A_log.shape == (2 * DIM, 4) for s in plain.scans.ssms)
    mask = torch.zeros(2, 11, dtype=torch.bool)
    mask[1, 6:] = True
    x = torch.randn(2, 11, DIM, requires_grad=True)
    with torch.no_grad():
        m.out_norm.bias.normal_()
    y, _ = m(x, mask)
    y[~mask].square().sum().backward()
    assert torch.isfinite(y).all() and (x.grad[1, 6:] == 0).all() and x.grad[1, :6].abs().sum() > 0
    assert all(s.A_log.grad is not None and s.A_log.grad.abs().sum() > 0 for s in ssms)
    assert m(torch.randn(1, GRID[0] * GRID[1], DIM), None, GRID)[0].shape == (1, GRID[0] * GRID[1], DIM)
    with pytest.raises(ValueError, match=r"^mixer .vmamba.: ssm_heads=3 must divide the SSM.s inner width 32 "):
        build_mixer("vmamba", DIM, ssm_heads=3)
