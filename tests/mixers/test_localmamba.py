"""LocalMamba: per-layer directions, SCAttn merge, causal restrictions (scan orders: tests/layers/test_grid.py)."""
import pytest
import torch

from infomamba.layers.ssm import SelectiveSSM
from infomamba.mixers import build_mixer
from infomamba.mixers.localmamba import DEFAULT_CAUSAL

DIM = 16


def test_directions_per_layer_and_flip():
    per_layer = [["h", "v"], ["w2", "w2_flip", "h_flip"]]
    m = build_mixer("localmamba", DIM, layer_idx=1, depth=2, directions=per_layer)
    assert m.scans.directions == ("w2", "w2_flip", "h_flip")
    assert [s.reverse for s in m.scans.ssms] == [False, True, True]
    with pytest.raises(ValueError, match="per-layer"):
        build_mixer("localmamba", DIM, layer_idx=0, depth=3, directions=per_layer)
    with pytest.raises(ValueError, match="unknown scan direction"):
        build_mixer("localmamba", DIM, directions=["diag"])


@pytest.mark.parametrize("directions, says", [
    (3, "got 3"), ("h", "the string 'h'"), ([["h"], "v"], "got 'v' for layer 1"), ([["h"], [2]], r"got \[2\]"),
    ([], "at least one")])
def test_a_malformed_directions_option_is_one_line_naming_it(directions, says):
    """A config's `directions: 3` reached `directions[0]` before (TypeError: 'int' object is not subscriptable)."""
    with pytest.raises(ValueError, match=says):
        build_mixer("localmamba", DIM, layer_idx=1, depth=2, directions=directions)


def test_causal_scans_forward_only_on_sequences():
    assert build_mixer("localmamba", DIM, causal=True).scans.directions == DEFAULT_CAUSAL
    with pytest.raises(ValueError, match="cannot scan backwards"):
        build_mixer("localmamba", DIM, causal=True, directions=["h", "h_flip"])
    with pytest.raises(ValueError, match="1-D sequences only"):
        build_mixer("localmamba", DIM, causal=True)(torch.randn(1, 6, DIM), None, (2, 3))


def test_scattn_gates_space_and_channels():
    torch.manual_seed(0)
    attn = build_mixer("localmamba", DIM).attn
    x = torch.randn(2, 9, attn.norm.normalized_shape[0])
    y = attn(x, None)
    gate = y / x
    assert gate.min() > 0 and gate.max() < 1
    # the spatial gate varies over tokens, the channel gate over channels
    assert gate.std(dim=1).mean() > 1e-4 and gate.std(dim=2).mean() > 1e-4


@pytest.mark.parametrize("causal", [False, True])
def test_ssm_heads_gives_every_direction_the_ssd_form(causal):
    """ssm_heads=H: every direction's SSM has dt and A a head (dt_proj (H, R), A_log (H,)); a padded forward
    and backward run with no gradient to the padded tokens; H must divide E."""
    m = build_mixer("localmamba", DIM, causal=causal, d_state=4, ssm_heads=4)
    plain = build_mixer("localmamba", DIM, causal=causal, d_state=4)
    ssms = [s for s in m.modules() if isinstance(s, SelectiveSSM)]
    assert len(ssms) == len(m.scans.directions) == (2 if causal else 4)
    assert [(s.heads, s.dt_proj.out_features, tuple(s.A_log.shape)) for s in ssms] == [(4, 4, (4,))] * len(ssms)
    assert all(s.heads is None and s.A_log.shape == (2 * DIM, 4) for s in plain.scans.ssms)
    mask = torch.zeros(2, 11, dtype=torch.bool)
    mask[1, 6:] = True
    x = torch.randn(2, 11, DIM, requires_grad=True)
    y, _ = m(x, mask)
    y.square().sum().backward()
    assert torch.isfinite(y).all() and (x.grad[1, 6:] == 0).all() and x.grad[1, :6].abs().sum() > 0
    assert all(s.A_log.grad is not None and s.A_log.grad.abs().sum() > 0 for s in ssms)
    with pytest.raises(ValueError, match=r"^mixer .localmamba.: ssm_heads=5 must divide the SSM.s inner width 32 "):
        build_mixer("localmamba", DIM, causal=causal, ssm_heads=5)
