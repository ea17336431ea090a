import collections

import pytest
import torch

from infomamba.losses import LossWeights, redundancy, supervised_info_nce, total_loss
from infomamba.mixers import MixerAux


def test_info_nce_lower_for_class_aligned_embeddings():
    labels = torch.arange(4).repeat_interleave(16)
    centers = torch.randn(4, 32) * 3
    z = centers[labels] + 0.3 * torch.randn(64, 32)
    aligned = supervised_info_nce(z, labels)
    shuffled = supervised_info_nce(z, labels[torch.randperm(64)])
    assert aligned < 0.5 * shuffled


def test_info_nce_skips_anchors_without_positive():
    z = torch.randn(3, 8, requires_grad=True)
    loss = supervised_info_nce(z, torch.tensor([0, 1, 2]))
    assert loss.item() == 0.0
    loss.backward()
    both = supervised_info_nce(torch.randn(3, 8), torch.tensor([0, 0, 2]))
    assert both.item() > 0


def test_redundancy_independent_much_smaller_than_identical():
    h = torch.randn(512, 16)
    assert redundancy(h, torch.randn(512, 16)) < 0.1 * redundancy(h, h)
    assert redundancy(h, 2 * h + 1) > 0.9


def test_total_loss_composes_eq14_and_beta_gamma_zero_leaves_task_and_hash():
    labels = torch.tensor([0, 0, 1, 1])
    aux = [MixerAux(h_pool=torch.randn(4, 8), r_pool=torch.randn(4, 8), mi_hash=torch.tensor(0.7)), MixerAux()]
    task = torch.tensor(1.5)
    w = LossWeights(beta=0.1, gamma=0.01, mi_hash=0.5)
    parts = total_loss(task, aux, labels, w)
    want = task + 0.1 * (parts["nce_h"] + parts["nce_r"]) + 0.01 * parts["red"] + 0.5 * 0.7
    torch.testing.assert_close(parts["loss"], want)
    off = total_loss(task, aux, labels, LossWeights(beta=0.0, gamma=0.0, mi_hash=0.5))
    torch.testing.assert_close(off["loss"], task + 0.35)
    ctc = total_loss(task, aux, None, LossWeights(use_nce=False))
    assert "nce_h" not in ctc and "red" in ctc


def test_info_nce_equals_the_definition_and_has_finite_gradients_without_positives():
    z = torch.randn(6, 5, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])  # anchor 5 has no positive
    zn = torch.nn.functional.normalize(z, dim=-1)
    sim = zn @ zn.t() / 0.1
    want = []
    for i in range(5):
        others = [a for a in range(6) if a != i]
        pos = [p for p in others if labels[p] == labels[i]]
        want.append(torch.logsumexp(sim[i, others], 0) - torch.logsumexp(sim[i, pos], 0))
    torch.testing.assert_close(supervised_info_nce(z, labels), torch.stack(want).mean())
    for z_, labels_ in ((torch.randn(4, 5, requires_grad=True), torch.arange(4)),
                        (torch.randn(1, 5, requires_grad=True), torch.tensor([3]))):
        loss = supervised_info_nce(z_, labels_)
        loss.backward()
        assert loss.item() == 0.0 and torch.isfinite(z_.grad).all()


def test_redundancy_of_independent_streams_is_about_width_over_batch():
    """Eq. 13 as implemented (squared batch correlations summed, divided by E) does not go to 0 for independent
    streams: each of the E x E batch correlations has variance ~1/(M - 1), so the penalty sits near E / (M - 1)
    (12.4 at E 384, batch 32: the level where the stalled speech runs settled, docs/results.md)."""
    g = torch.Generator().manual_seed(0)
    for M, E in ((32, 384), (16, 384), (64, 96)):
        values = torch.stack([redundancy(torch.randn(M, E, generator=g), torch.randn(M, E, generator=g))
                              for _ in range(8)])
        assert abs(values.mean().item() / (E / (M - 1)) - 1) < 0.03, (M, E, values.mean().item())


@pytest.mark.parametrize("mixer", ["mamba", "vmamba", "localmamba", "mambavision", "attention", "linformer", "vmisa"])
def test_a_baseline_trains_on_the_task_loss_alone(mixer):
    """Eq. 12-14 are InfoMamba's objective: a baseline's recurrent readout must not get Eq. 12's InfoNCE (the
    SSM baselines had reported it, and so trained with beta * NCE_r besides the task loss)."""
    from infomamba import Encoder, EncoderConfig

    options = {"linformer": {"max_len": 8}}.get(mixer, {})
    out = Encoder(EncoderConfig(dim=16, depth=1, mixer=mixer, mixer_options=options))(torch.randn(4, 8, 16))
    task = out.hidden.square().mean()
    parts = total_loss(task, out.aux, torch.tensor([0, 1, 0, 1]), LossWeights())
    assert set(parts) == {"task", "loss"} and torch.equal(parts["loss"], task)


def test_infomamba_and_its_table5_variants_keep_the_objective():
    from infomamba import Encoder, EncoderConfig

    for variant, terms in (("full", {"nce_h", "nce_r", "red", "mi_hash"}), ("no_filter", {"nce_r"})):
        config = EncoderConfig(dim=16, depth=1, mixer="infomamba", mixer_options={"k_max": 8, "variant": variant})
        out = Encoder(config)(torch.randn(4, 8, 16))
        parts = total_loss(out.hidden.square().mean(), out.aux, torch.tensor([0, 1, 0, 1]), LossWeights())
        assert set(parts) - {"task", "loss"} == terms, variant


def test_eq12_and_eq13_run_in_fp32_under_bf16_autocast():
    """bf16-mixed training: the similarity logits (up to 1 / tau) and batch correlations are not bf16 matmuls."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(4).repeat_interleave(8)
    z = 3 * torch.randn(4, 64, generator=g)[labels] + 0.3 * torch.randn(32, 64, generator=g)
    h, r = torch.randn(32, 96, generator=g), torch.randn(32, 96, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nce, red = supervised_info_nce(z, labels), redundancy(h, r)
    assert nce.dtype == red.dtype == torch.float32
    torch.testing.assert_close(nce, supervised_info_nce(z.double(), labels).float(), rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(red, redundancy(h.double(), r.double()).float(), rtol=1e-5, atol=0)


def test_a_sample_without_real_tokens_changes_no_other_samples_terms():
    """An all-padding sample pools to zero: no cosine, no batch member; the others' Eq. 12-13 are unchanged."""
    from infomamba import Encoder, EncoderConfig

    torch.manual_seed(0)
    encoder = Encoder(EncoderConfig(dim=16, depth=1, mixer="infomamba", mixer_options={"k_max": 8})).eval()
    x = torch.randn(5, 8, 16, requires_grad=True)
    padding = torch.zeros(5, 8, dtype=torch.bool)
    padding[1, 5:], padding[4] = True, True
    labels = torch.tensor([0, 1, 0, 1, 0])
    full = total_loss(torch.zeros(()), encoder(x, padding).aux, labels, LossWeights())
    kept = total_loss(torch.zeros(()), encoder(x[:4], padding[:4]).aux, labels[:4], LossWeights())
    for name in ("nce_h", "nce_r", "red", "mi_hash", "loss"):
        torch.testing.assert_close(full[name], kept[name], msg=name)
    full["loss"].backward()
    assert torch.isfinite(x.grad).all() and x.grad[4].eq(0).all()


def test_info_nce_excludes_pairs_at_any_temperature():
    z, labels, tau = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0, 1]), 5e-5
    want = torch.tensor(1 / tau)  # anchors 0 and 1: log of the denominator 0 (anchor 2), of the numerator -1 / tau
    torch.testing.assert_close(supervised_info_nce(z, labels, tau), want)


@pytest.mark.parametrize("option", [{"gamma": -0.01}, {"beta": float("nan")}, {"mi_hash": -1.0}, {"tau_nce": 0.0}])
def test_loss_weights_refuse_negative_weights_and_temperatures(option):
    with pytest.raises(ValueError, match=f"loss.{next(iter(option))}"):
        LossWeights(**option)


def layer_streams(seed: int, shapes: list[tuple[int, int]]) -> list[MixerAux]:
    """One MixerAux a layer with h, r of the given (M, E) shapes (None for E = 0: a layer without streams), some
    samples all zeros (no real token), and the MI-hash term."""
    g = torch.Generator().manual_seed(seed)
    layers = []
    for M, E in shapes:
        if not E:
            layers.append(MixerAux(mi_hash=torch.rand((), generator=g).requires_grad_()))
            continue
        h, r = torch.randn(M, E, generator=g), torch.randn(M, E, generator=g)
        h[1], r[1] = 0.0, 0.0
        layers.append(MixerAux(h_pool=h.requires_grad_(), r_pool=r.requires_grad_(),
                               mi_hash=torch.rand((), generator=g).requires_grad_()))
    return layers


def test_the_stacked_terms_equal_each_layers_terms_averaged():
    """Eq. 12 and 13 run once on the streams of all layers of one shape stacked: the same values and gradients as
    each layer's own term averaged over the layers, also with layers of two widths and a layer without streams."""
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    aux = layer_streams(0, [(6, 16), (6, 16), (6, 0), (6, 24), (6, 16)])
    parts = total_loss(torch.tensor(0.5), aux, labels, LossWeights())
    streams = [layer for layer in aux if layer.h_pool is not None]
    want = {"nce_h": torch.stack([supervised_info_nce(layer.h_pool, labels) for layer in streams]).mean(),
            "nce_r": torch.stack([supervised_info_nce(layer.r_pool, labels) for layer in streams]).mean(),
            "red": torch.stack([redundancy(layer.h_pool, layer.r_pool) for layer in streams]).mean(),
            "mi_hash": torch.stack([layer.mi_hash for layer in aux]).mean()}
    inputs = [t for layer in aux for t in (layer.h_pool, layer.r_pool, layer.mi_hash) if t is not None]
    for name, value in want.items():
        torch.testing.assert_close(parts[name], value, msg=name)
        got = torch.autograd.grad(parts[name], inputs, allow_unused=True, retain_graph=True)
        expected = torch.autograd.grad(value, inputs, allow_unused=True)
        for g, e in zip(got, expected):
            assert (g is None) == (e is None), name
            if g is not None:
                torch.testing.assert_close(g, e, msg=name)


def test_the_auxiliary_terms_launch_as_many_ops_at_any_depth():
    """Eq. 14's auxiliary terms dispatch the same ops that launch work, forward and backward to the streams, for 2
    layers as for 8: they run once on the layers stacked (run a layer at a time, they had been some 200 small kernels
    a layer)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    views = {"view", "_unsafe_view", "unsqueeze", "squeeze", "select", "slice", "detach", "alias", "expand", "t",
             "transpose", "unbind"}

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = collections.Counter()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ not in views:
                self.ops[func.overloadpacket.__name__] += 1
            return func(*args, **(kwargs or {}))

    def ops(depth: int) -> collections.Counter:
        aux = layer_streams(depth, [(8, 16)] * depth)
        inputs = [t for layer in aux for t in (layer.h_pool, layer.r_pool, layer.mi_hash)]
        with Count() as count:
            torch.autograd.grad(total_loss(torch.tensor(0.5), aux, torch.arange(8) % 3, LossWeights())["loss"], inputs)
        return count.ops

    assert ops(8) == ops(2)
