import re

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from infomamba import Encoder, EncoderConfig, list_mixers
from infomamba.losses import LossWeights, total_loss
from infomamba.mixers import MixerAux

SMALL = dict(k_max=20, chunk=8, d_state=4, d_concept=8)


def make(**kw):
    return Encoder(EncoderConfig(dim=16, depth=2, mixer_options=SMALL, **kw))


def test_public_api_and_output():
    assert {"infomamba", "attention"} <= set(list_mixers())
    enc = make()
    out = enc(torch.randn(3, 30, 16))
    assert out.hidden.shape == (3, 30, 16) and len(out.aux) == 2
    aux = out.aux[0]
    assert isinstance(aux, MixerAux) and aux.h_pool.shape == aux.r_pool.shape == (3, 32)
    assert aux.mi_hash.dim() == aux.k_eff.dim() == 0
    out = enc(torch.randn(2, 24, 16), grid=(4, 6))
    assert out.hidden.shape == (2, 24, 16)


def test_the_package_exports_what_a_mixer_plugin_and_a_caller_of_the_encoder_name():
    """A plugin subclasses Mixer and registers it; a caller reads EncoderOutput and MixerAux: all from the top."""
    import infomamba
    from infomamba.encoder import EncoderOutput
    from infomamba.mixers import Mixer, build_mixer, register_mixer

    assert {"Mixer", "MixerAux", "EncoderOutput", "build_mixer", "register_mixer"} <= set(infomamba.__all__)
    assert (infomamba.Mixer, infomamba.MixerAux, infomamba.EncoderOutput) == (Mixer, MixerAux, EncoderOutput)
    assert (infomamba.build_mixer, infomamba.register_mixer) == (build_mixer, register_mixer)
    assert all(hasattr(infomamba, name) for name in infomamba.__all__)


def test_every_parameter_gets_a_gradient_from_the_total_loss():
    enc = make().train()
    x = torch.randn(4, 30, 16)
    out = enc(x)
    labels = torch.tensor([0, 0, 1, 1])
    parts = total_loss(out.hidden.square().mean(), out.aux, labels, LossWeights())
    parts["loss"].backward()
    missing = [n for n, p in enc.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


@pytest.mark.parametrize("causal", [False, True])
def test_padded_batch_equals_each_sample_alone(causal):
    enc = make(causal=causal).eval()
    x = torch.randn(2, 37, 16)
    mask = torch.zeros(2, 37, dtype=torch.bool)
    mask[0, 20:] = True
    with torch.no_grad():
        out = enc(x, mask)
        a = enc(x[:1, :20]).hidden
        b = enc(x[1:]).hidden
    torch.testing.assert_close(out.hidden[0, :20], a[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.hidden[1], b[0], atol=1e-5, rtol=1e-5)
    assert torch.count_nonzero(out.hidden[0, 20:]) == 0


def test_causal_encoder_and_bidirectional_contrast():
    x = torch.randn(1, 40, 16)
    x2 = x.clone()
    x2[:, 30:] = torch.randn(1, 10, 16)
    for causal in (True, False):
        enc = make(causal=causal).eval()
        with torch.no_grad():
            d = (enc(x).hidden[:, :30] - enc(x2).hidden[:, :30]).abs().max()
        assert (d < 1e-5) if causal else (d > 1e-3)


def test_config_errors_are_specific():
    with pytest.raises(ValueError, match="encoder.mixer='nope'"):
        Encoder(EncoderConfig(mixer="nope"))
    with pytest.raises(ValueError, match="unknown option"):
        Encoder(EncoderConfig(dim=16, depth=1, mixer_options={"kmax": 3}))
    with pytest.raises(ValueError, match="norm"):
        Encoder(EncoderConfig(norm="batchnorm"))
    enc = make()
    with pytest.raises(ValueError, match="padding_mask must be bool"):
        enc(torch.randn(1, 5, 16), torch.zeros(1, 5))
    with pytest.raises(ValueError, match=r"\(B, L, 16\)"):
        enc(torch.randn(1, 5, 8))
    # (2, 3, 1) had passed as (2, 3), (-2, -3) as its product, (2.0, 3.0) truncated
    for grid, length in [((2, 3), 5), ((2, 3, 1), 6), ((6,), 6), ((-2, -3), 6), ((2.0, 3.0), 6)]:
        with pytest.raises(ValueError, match=rf"grid {re.escape(str(grid))} is not an \(H, W\) pair covering the"):
            enc(torch.randn(1, length, 16), grid=grid)


class _HostSyncs(TorchDispatchMode):
    """Counts the ops that make the host wait for the device (.item(), boolean indexing, F.one_hot's checks)."""

    SYNCING = {"_local_scalar_dense", "nonzero", "masked_select", "_unique2", "repeat_interleave"}

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ in self.SYNCING:
            self.seen.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("mixer", ["infomamba", "mamba", "attention", "vmamba", "localmamba", "vmisa"])
def test_a_training_step_never_waits_for_the_device(mixer):
    """Forward, Eq. 14 losses and backward queue work without a host synchronisation, so the CPU can run
    ahead of the GPU (a sync per layer stalls a launch-bound step)."""
    enc = Encoder(EncoderConfig(dim=32, depth=2, mixer=mixer)).train()
    x = torch.randn(4, 20, 32, requires_grad=True)
    mask = torch.zeros(4, 20, dtype=torch.bool)
    mask[1, 15:] = True
    with _HostSyncs() as syncs:
        out = enc(x, mask)
        total_loss(out.hidden.mean(1).sum(), out.aux, torch.tensor([0, 1, 0, 2]), LossWeights())["loss"].backward()
    assert syncs.seen == []


@pytest.mark.parametrize("mixer", list_mixers())
def test_a_model_cast_to_bfloat16_runs_in_bfloat16(mixer):
    """`model.to(torch.bfloat16)` (no autocast): every op meets bf16 weights with bf16 inputs (InfoMamba's concept
    pooling had divided by its fp32 mass and handed an fp32 Z to a bf16 linear)."""
    options = {"linformer": {"max_len": 16}}.get(mixer, {})
    encoder = Encoder(EncoderConfig(dim=16, depth=1, mixer=mixer, mixer_options=options)).eval().to(torch.bfloat16)
    with torch.no_grad():
        hidden = encoder(torch.randn(2, 9, 16, dtype=torch.bfloat16)).hidden
    assert hidden.dtype == torch.bfloat16 and torch.isfinite(hidden).all()


@pytest.mark.parametrize("key, value, words", [
    ("dim", 16.0, "encoder.dim must be int, got 16.0 (float)"),
    ("depth", True, "encoder.depth must be int, got True (bool)"),
    ("causal", "no", "encoder.causal must be bool, got 'no' (str)"),
    ("mlp_ratio", -1, "encoder.dim, encoder.depth and encoder.mlp_ratio must be positive"),
    ("mixer_options", None, "encoder.mixer_options must be dict, got None"),
    ("dropout", "0.1", "encoder.dropout must be a number, got '0.1' (str)"),
    ("drop_path", None, "encoder.drop_path must be a number, got None (NoneType)"),
    ("mixer_options", {"causal": True}, "encoder.mixer_options cannot set ['causal']: the encoder passes them"),
    ("mlp_ratio", 0.01, "encoder.mlp_ratio=0.01 leaves the MLP no hidden unit at dim=16"),  # had built a bias-only MLP
    ("cross_layer_options", {"stride": 2}, "without encoder.cross_layer: set cross_layer: sparx"),
])
def test_a_config_value_of_the_wrong_kind_is_one_line_naming_the_key(key, value, words):
    """A wrong type had surfaced as a raw Python error deep in the build (or, for causal="no", built a causal
    model)."""
    with pytest.raises(ValueError, match=re.escape(words)):
        Encoder(EncoderConfig(**{"dim": 16, "depth": 1, "mixer": "attention", key: value}))


def test_an_unknown_cross_layer_option_is_named_with_the_accepted_ones():
    with pytest.raises(ValueError, match=r"cross_layer_options got unknown option\(s\) \['strid'\]; accepted: "
                                         r"\['stride', 'window', 'groups', 'causal'\]"):
        Encoder(EncoderConfig(dim=16, depth=2, mixer="attention", cross_layer="sparx",
                              cross_layer_options={"strid": 2}))
