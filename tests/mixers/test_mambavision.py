"""MambaVision: attention in the last half of the blocks; mixer = scanned half + conv half, 'same' convs."""
import pytest
import torch

from infomamba import Encoder, EncoderConfig
from infomamba.layers.attention import SelfAttention
from infomamba.layers.ssm import SelectiveSSM
from infomamba.mixers import build_mixer
from infomamba.mixers.mambavision import attention_layers
from shape_audit import ShapeAudit

DIM, L = 16, 12


@pytest.mark.parametrize("depth, expected", [(1, []), (4, [2, 3]), (5, [3, 4]), (8, [4, 5, 6, 7])])
def test_attention_in_the_last_half(depth, expected):
    assert attention_layers("last_half", depth) == expected
    encoder = Encoder(EncoderConfig(dim=DIM, depth=depth, mixer="mambavision"))
    uses = [i for i, block in enumerate(encoder.stack.blocks) if block.mixer.uses_attention]
    assert uses == expected
    for i, block in enumerate(encoder.stack.blocks):
        assert isinstance(getattr(block.mixer, "attention", None), SelfAttention) == (i in expected)
        assert block.mixer.linear_time == (i not in expected)


def test_explicit_attention_layers():
    assert not build_mixer("mambavision", DIM, layer_idx=3, depth=4, attn_layers=[]).uses_attention
    assert build_mixer("mambavision", DIM, layer_idx=0, depth=4, attn_layers=[0]).uses_attention
    with pytest.raises(ValueError, match="outside"):
        build_mixer("mambavision", DIM, depth=4, attn_layers=[4])
    for odd in ([True], [1.0]):  # True had been read as layer 1
        with pytest.raises(ValueError, match=r"attn_layers must be layer indices \(ints\), got \["):
            build_mixer("mambavision", DIM, depth=4, attn_layers=odd)


def _reach(causal: bool) -> list[bool]:
    """Whether output 4 changes when input 4 + k changes, k = 1, 2."""
    torch.manual_seed(0)
    m = build_mixer("mambavision", DIM, causal=causal, d_conv=3)
    x = torch.randn(1, L, DIM)
    y, _ = m(x)
    reach = []
    for k in (1, 2):
        x2 = x.clone()
        x2[:, 4 + k] += 1.0
        reach.append(not torch.allclose(m(x2)[0][:, 4], y[:, 4]))
    return reach


def test_convs_are_same_padded_and_the_scan_forward_only():
    """Bidirectional: the width-3 'same' convs see one token ahead, the forward scan none."""
    assert _reach(causal=False) == [True, False]
    assert _reach(causal=True) == [False, False]


def test_two_halves_concatenated():
    m = build_mixer("mambavision", DIM, expand=2)
    assert m.in_proj.out_features == 2 * DIM and m.out_proj.in_features == 2 * DIM
    assert m.ssm.conv is None and m.ssm.reverse is False
    assert m.conv_x.conv.in_channels == m.conv_z.conv.in_channels == DIM


def test_mixer_layers_build_no_L_by_L_tensor():
    """The contract audits layer 1 of 2, an attention layer; audit the scanning layer here."""
    m = build_mixer("mambavision", DIM, layer_idx=0, depth=2, d_state=4)
    assert m.linear_time
    n = 29
    x = torch.randn(2, n, DIM, requires_grad=True)
    mask = torch.zeros(2, n, dtype=torch.bool)
    mask[1, 20:] = True
    with ShapeAudit() as audit:
        m(x, mask)[0].sum().backward()
    assert audit.records and audit.quadratic(n) == []


@pytest.mark.parametrize("causal", [False, True])
def test_ssm_heads_gives_the_scan_the_ssd_form(causal):
    """ssm_heads=H: the one SSM (over the scanned half, E/2 channels) has dt and A a head (dt_proj (H, R),
    A_log (H,)); a padded forward and backward run with no gradient to the padded tokens; H must divide E/2,
    not just E: the SSM's error (naming its width) reaches the caller."""
    m = build_mixer("mambavision", DIM, causal=causal, expand=2, d_state=4, ssm_heads=4)
    plain = build_mixer("mambavision", DIM, causal=causal, expand=2, d_state=4)
    ssms = [s for s in m.modules() if isinstance(s, SelectiveSSM)]
    assert [(s.heads, s.dt_proj.out_features, tuple(s.A_log.shape)) for s in ssms] == [(4, 4, (4,))]
    assert plain.ssm.heads is None and plain.ssm.A_log.shape == (DIM, 4)
    mask = torch.zeros(2, L, dtype=torch.bool)
    mask[1, 7:] = True
    x = torch.randn(2, L, DIM, requires_grad=True)
    y, _ = m(x, mask)
    y.square().sum().backward()
    assert torch.isfinite(y).all() and (x.grad[1, 7:] == 0).all() and x.grad[1, :7].abs().sum() > 0
    assert m.ssm.A_log.grad is not None and m.ssm.A_log.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"^mixer .mambavision.: ssm_heads=32 must divide the SSM.s inner width 16 "):
        build_mixer("mambavision", DIM, causal=causal, expand=2, ssm_heads=2 * DIM)   # divides E = 32, not 16
