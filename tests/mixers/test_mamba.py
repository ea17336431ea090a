"""Vim bidirectional Mamba (Algorithm 1): forward + backward streams with separate parameters, gated sum."""
import torch
import torch.nn.functional as F

from infomamba.mixers import MixerAux, build_mixer

DIM, L = 16, 14


def test_directions():
    assert [s.reverse for s in build_mixer("mamba", DIM).ssm] == [False, True]
    assert [s.reverse for s in build_mixer("mamba", DIM, causal=True).ssm] == [False]
    fwd, bwd = build_mixer("mamba", DIM).ssm
    assert not torch.equal(fwd.x_proj.weight, bwd.x_proj.weight)


def test_output_is_the_gated_sum_of_both_streams():
    torch.manual_seed(0)
    m = build_mixer("mamba", DIM, d_state=4)
    x = torch.randn(2, L, DIM)
    y, aux = m(x)
    xs, z = m.in_proj(x).chunk(2, dim=-1)
    r_fwd, r_bwd = (s(xs) for s in m.ssm)
    torch.testing.assert_close(y, m.out_proj(r_fwd * F.silu(z)) + m.out_proj(r_bwd * F.silu(z)))
    assert aux == MixerAux()  # a baseline reports no stream: it trains on the task loss alone


def test_bidirectional_reads_the_future():
    torch.manual_seed(0)
    m = build_mixer("mamba", DIM, d_state=4)
    x = torch.randn(1, L, DIM)
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(m(x)[0][:, 0], m(x2)[0][:, 0])


def test_ssm_heads_gives_every_direction_the_ssd_form():
    """ssm_heads=H: both directions' SSMs have dt and A a head (dt_proj (H, R), A_log (H,)); fewer parameters
    than the per-channel form; a causal, padded forward and backward run."""
    m, plain = build_mixer("mamba", DIM, d_state=4, ssm_heads=8), build_mixer("mamba", DIM, d_state=4)
    assert [(s.reverse, s.heads, tuple(s.A_log.shape), s.dt_proj.weight.shape[0]) for s in m.ssm] == \
        [(False, 8, (8,), 8), (True, 8, (8,), 8)]
    assert all(s.heads is None and s.A_log.shape == (2 * DIM, 4) for s in plain.ssm)
    count = sum(p.numel() for p in m.parameters())
    assert count < sum(p.numel() for p in plain.parameters())
    causal = build_mixer("mamba", DIM, causal=True, ssm_heads=8)
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[1, 9:] = True
    x = torch.randn(2, L, DIM, requires_grad=True)
    y, _ = causal(x, mask)
    y.square().sum().backward()
    assert torch.isfinite(y).all() and (x.grad[1, 9:] == 0).all() and x.grad[0].abs().sum() > 0
