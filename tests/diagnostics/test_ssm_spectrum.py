"""Spectral radius of exp(dt A) (H2): below 1 when A < 0, and equal to exp(max dt A) recomputed here
independently of the inner path's helpers (conv, projections and softplus written out by hand)."""
import math

import pytest
import torch
import torch.nn.functional as F

from infomamba import Encoder, EncoderConfig
from infomamba.diagnostics.ssm_spectrum import SSMSpectrumRecorder, step_sizes
from infomamba.layers.ssm import SelectiveSSM


def dt_by_hand(ssm: SelectiveSSM, x, padding_mask, h, p):
    """dt (B, L, E) written out: zero padding, depthwise conv in the scan direction, SiLU, + p * h,
    x_proj -> the first dt_rank columns -> dt_proj -> softplus."""
    keep = (~padding_mask).float()[..., None]
    xm = x * keep
    if ssm.reverse:
        xm = xm.flip(1)
    taps = ssm.conv.weight.shape[-1]
    y = F.conv1d(F.pad(xm.transpose(1, 2), (taps - 1, 0)), ssm.conv.weight, ssm.conv.bias, groups=xm.shape[-1])
    u = F.silu(y).transpose(1, 2)
    if ssm.reverse:
        u = u.flip(1)
    u = (u + p * h) * keep
    dt = F.softplus(ssm.dt_proj(ssm.x_proj(u)[..., :ssm.dt_rank]))
    return dt, keep[..., 0].bool()


@pytest.mark.parametrize("reverse", [False, True])
def test_radius_is_below_one_and_matches_exp_of_max_dt_a(reverse):
    torch.manual_seed(0)
    ssm = SelectiveSSM(12, dt_rank=2, d_state=4, d_conv=3, reverse=reverse)
    with torch.no_grad():  # a "trained" A: random negative entries, not the S4D-real init
        ssm.A_log.copy_(torch.randn_like(ssm.A_log))
        ssm.dt_proj.bias.add_(2.0)  # larger steps: radii spread well below 1
    B, L = 3, 10
    x, h, p = torch.randn(B, L, 12), torch.randn(B, L, 12), 0.5 * torch.rand(12)
    padding_mask = torch.arange(L)[None, :] >= torch.tensor([10, 6, 8])[:, None]
    with SSMSpectrumRecorder(ssm, max_values=10_000) as recorder, torch.no_grad():
        ssm(x, padding_mask, h, p=p)
    summary = recorder.records[""].summary()

    with torch.no_grad():
        dt, real = dt_by_hand(ssm, x, padding_mask, h, p)
        A = -torch.exp(ssm.A_log)
        expected = torch.exp(dt[..., None] * A)[real].max()   # max over real tokens, channels and states
        expected_median = torch.exp(dt[..., None] * A).amax(-1)[real].median()
    assert summary["values"] == int(real.sum()) * 12
    assert summary["rho_max"] == pytest.approx(float(expected), abs=1e-6)
    assert summary["rho_max"] < 1
    assert summary["rho_quantiles"]["0.5"] == pytest.approx(float(expected_median), abs=2e-2)
    assert 0 < summary["rho_mean"] < 1 and summary["half_life_median"] > 0
    torch.testing.assert_close(step_sizes(ssm, x, padding_mask, h, p)[real], dt[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mixer, options", [
    ("mamba", {"d_state": 4}),
    ("infomamba", {"d_state": 4, "k_max": 8, "d_concept": 8, "chunk": 4}),   # u also gets the injection P h
])
def test_every_ssm_direction_of_an_encoder_is_recorded(mixer, options):
    encoder = Encoder(EncoderConfig(dim=16, depth=2, mixer=mixer, mixer_options=options)).eval()
    x = torch.randn(2, 9, 16)
    padding_mask = torch.arange(9)[None, :] >= torch.tensor([9, 4])[:, None]
    with SSMSpectrumRecorder(encoder, max_values=50) as recorder, torch.no_grad():
        encoder(x, padding_mask)
    summaries = [r.summary() for r in recorder.records.values()]
    assert [(s["index"], s["reverse"]) for s in summaries] == [(0, False), (0, True), (1, False), (1, True)]
    for s, record in zip(summaries, recorder.records.values()):
        assert s["values"] == 13 * record.channels                       # real tokens only
        assert sum(t.numel() for t in record.samples) == 50             # the subsample cap
        assert s["rho_quantiles"]["0.5"] <= s["rho_max"] < 1
        assert math.isfinite(s["half_life_max"])
    assert not any(m._forward_pre_hooks for m in encoder.modules())


def test_ssd_form_radius_is_exp_of_dt_a_per_head():
    """heads=H: one transition exp(dt_t[h] A[h]) a head; ρ is recorded per head, not maxed over heads."""
    torch.manual_seed(0)
    ssm = SelectiveSSM(12, dt_rank=2, d_state=4, d_conv=3, heads=3)
    x, h, p = torch.randn(2, 10, 12), torch.zeros(2, 10, 12), torch.zeros(12)
    padding_mask = torch.zeros(2, 10, dtype=torch.bool)
    with SSMSpectrumRecorder(ssm, max_values=10_000) as recorder, torch.no_grad():
        ssm(x, padding_mask, h, p=p)
    summary = recorder.records[""].summary()
    with torch.no_grad():
        dt, _ = dt_by_hand(ssm, x, padding_mask, h, p)
        rho = torch.exp(dt * -torch.exp(ssm.A_log))                                     # (B, L, H)
    assert dt.shape == (2, 10, 3) and summary["channels"] == 3 and summary["values"] == 2 * 10 * 3
    assert summary["rho_max"] == pytest.approx(float(rho.max()), abs=1e-6)
    assert summary["rho_mean"] == pytest.approx(float(rho.mean()), abs=1e-5)
