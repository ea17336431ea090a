"""InfoMamba-specific properties: each Table 5 switch changes exactly what it names."""
import dataclasses
import threading

import pytest
import torch

from infomamba.mixers import MixerAux, build_mixer, training_terms, without_training_terms
from infomamba.mixers.infomamba import VARIANTS

OPTS = dict(k_max=20, chunk=8, d_state=4, d_concept=8)
DIM, L = 16, 40


def build(variant="full", causal=False, **kw):
    return build_mixer("infomamba", DIM, causal=causal, variant=variant, **OPTS, **kw).eval()


def copy_shared(src, dst):
    dst.load_state_dict({k: v for k, v in src.state_dict().items() if k in dst.state_dict()}, strict=False)


def run(m, x):
    with torch.no_grad():
        return m(x, None, None)[0]


@pytest.mark.parametrize("causal", [False, True])
def test_zero_p_and_f_equal_no_filter(causal):
    full, plain = build(causal=causal), build("no_filter", causal=causal)
    with torch.no_grad():
        full.p.zero_()
        full.f.zero_()
    copy_shared(full, plain)
    x = torch.randn(2, L, DIM)
    torch.testing.assert_close(run(full, x), run(plain, x))
    with torch.no_grad():
        full.f.fill_(1.0)
    assert (run(full, x) - run(plain, x)).abs().max() > 1e-3


def test_no_imf_equals_full_with_p_zero_and_f_one():
    full, no_imf = build(), build("no_imf")
    with torch.no_grad():
        full.p.zero_()
        full.f.fill_(1.0)
    copy_shared(full, no_imf)
    assert not hasattr(no_imf, "p") and not hasattr(no_imf, "f")
    x = torch.randn(2, L, DIM)
    torch.testing.assert_close(run(full, x), run(no_imf, x))


def test_injection_reaches_the_state():
    """With F = 0 the filter still changes the output, through P h in the scan input."""
    full = build()
    with torch.no_grad():
        full.f.zero_()
    x = torch.randn(2, L, DIM)
    y = run(full, x)
    with torch.no_grad():
        full.p.zero_()
    assert (run(full, x) - y).abs().max() > 1e-3


def test_parameter_sets_of_the_variants():
    names = {v: {n.split(".")[0] for n, _ in build(v).named_parameters()} for v in VARIANTS}
    assert "ssm" not in names["no_ssm"] and "filter" in names["no_ssm"]
    assert "filter" not in names["no_filter"] and "ssm" in names["no_filter"]
    assert names["no_filter_no_ssm"] == set()
    static = dict(build("static_rr").filter.named_parameters())
    assert "R0" in static and "w_r.weight" not in static and "hash_head.weight" not in static
    nomix = dict(build("no_mix").filter.mixing.named_parameters())
    assert set(nomix) == {"v.weight"}


def test_no_ssm_has_no_p_and_loads_a_state_dict_that_had_one():
    """no_ssm is y = F h: P (the injection into the state) had been built with no path to the output."""
    m = build("no_ssm")
    assert not hasattr(m, "p") and hasattr(m, "f")
    m.load_state_dict({**m.state_dict(), "p": torch.zeros(2 * DIM)})


def test_an_integer_fusion_init_is_a_float_start():
    m = build(fusion_init=0)
    assert m.p.dtype == m.f.dtype == torch.float32 and torch.count_nonzero(m.p) == 0


def test_no_filter_no_ssm_mixer_is_zero():
    y, aux = build("no_filter_no_ssm")(torch.randn(2, L, DIM), None, None)
    assert torch.count_nonzero(y) == 0 and aux == MixerAux()


def test_static_rr_assignment_ignores_the_input_and_no_mix_is_value_only():
    m = build("static_rr")
    torch.testing.assert_close(m.filter.assign_logits(torch.randn(2, L, DIM)), m.filter.assign_logits(torch.randn(2, L, DIM)))
    with pytest.raises(ValueError, match="static_len"):
        build("static_rr", static_len=16).filter.assign_logits(torch.randn(1, L, DIM))
    nomix = build("no_mix").filter.mixing
    Z = torch.randn(1, 1, 20, DIM)
    torch.testing.assert_close(nomix(Z, torch.ones(1, 1, 20)), nomix.v(Z))


@pytest.mark.parametrize("causal", [False, True])
def test_static_rr_reads_r0_by_real_token_so_left_padding_changes_nothing(causal):
    """R_0's rows had been taken by absolute position: 3 left pads gave the real tokens rows 3.. instead of 0.."""
    m = build("static_rr", causal=causal).double()
    x = torch.randn(1, L - 3, DIM, dtype=torch.float64)
    padded = torch.cat([torch.randn(1, 3, DIM, dtype=torch.float64), x], 1)
    mask = torch.zeros(1, L, dtype=torch.bool)
    mask[:, :3] = True
    with torch.no_grad():
        torch.testing.assert_close(m(padded, mask, None)[0][:, 3:], m(x, None, None)[0], rtol=1e-6, atol=1e-7)


def test_causal_filter_carries_information_across_chunks():
    """The global path stays alive in causal mode: with no SSM at all, chunk 3 still reads chunk 0."""
    m = build("no_ssm", causal=True)
    x = torch.randn(1, L, DIM)
    x2 = x.clone()
    x2[:, :8] = torch.randn(1, 8, DIM)
    y, y2 = run(m, x), run(m, x2)
    assert (y[:, 24:32] - y2[:, 24:32]).abs().max() > 1e-4
    x3 = x.clone()
    x3[:, 24:] = torch.randn(1, L - 24, DIM)
    torch.testing.assert_close(run(m, x3)[:, :24], y[:, :24])


def test_unknown_variant_and_option_rejected():
    with pytest.raises(ValueError, match="variant"):
        build("no_such")
    with pytest.raises(ValueError, match="unknown option"):
        build_mixer("infomamba", DIM, kmax=3)


@pytest.mark.parametrize("causal", [False, True])
def test_training_keeps_no_h_and_gives_the_gradients_of_keeping_it(causal, monkeypatch):
    """h (Eq. 10) is saved as its recipe (`layers/recompute.py`): no tensor autograd keeps shares h's memory,
    and the gradients are bitwise those of keeping h (the recipe switched off)."""
    import contextlib

    import infomamba.mixers.infomamba as module
    from infomamba.layers.concepts import ConceptFilter

    def grads(keep_h):
        with monkeypatch.context() as patch:
            if keep_h:
                patch.setattr(module, "saved_as_recipe", lambda t, recipe: contextlib.nullcontext())
            made, saved = [], []
            token_stream = ConceptFilter.token_stream
            patch.setattr(ConceptFilter, "token_stream", lambda *a: made.append(token_stream(*a)) or made[-1])
            torch.manual_seed(0)
            m = build(causal=causal).train()
            x = torch.randn(2, L, DIM, requires_grad=True)
            pad = torch.zeros(2, L, dtype=torch.bool)
            pad[1, -7:] = True
            with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
                out, aux = m(x, pad, None)
            h = made[0][0].untyped_storage().data_ptr()
            keeps_h = any(t.untyped_storage().data_ptr() == h for t in saved)
            (out.square().sum() + aux.h_pool.sum()).backward()
            return keeps_h, [x.grad] + [p.grad for p in m.parameters()]

    keeps_h, with_recipe = grads(keep_h=False)
    kept, without = grads(keep_h=True)
    assert kept and not keeps_h
    assert len(with_recipe) == len(without)
    for a, b in zip(with_recipe, without):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def as_mamba1(ssd_state, d_state):
    """The Mamba-1 parameters of an SSD-form state dict: each head's dt_proj row, dt bias and A_log repeated
    over the head's channels (A_log over the states too); every other tensor as it is."""
    out = dict(ssd_state)
    for key, value in ssd_state.items():
        prefix, _, leaf = key.rpartition(".")
        if leaf == "A_log" or key.endswith(("dt_proj.weight", "dt_proj.bias")):
            owner = prefix.removesuffix(".dt_proj")
            per_head = ssd_state[owner + ".D"].shape[0] // ssd_state[owner + ".A_log"].shape[0]
            value = value.repeat_interleave(per_head, 0)
            out[key] = value[:, None].expand(-1, d_state).clone() if leaf == "A_log" else value
    return out


@pytest.mark.parametrize("causal", [False, True])
def test_ssm_heads_is_the_per_channel_ssm_with_head_shared_dt_and_a(causal):
    """ssm_heads=4: every direction's SSM in the SSD form (dt_proj (4, R), A_log (4,)), and the mixer equals the
    default one whose dt and A parameters repeat each head's over its channels."""
    torch.manual_seed(0)
    ssd, plain = build(causal=causal, ssm_heads=4), build(causal=causal)
    assert [tuple(s.A_log.shape) + tuple(s.dt_proj.weight.shape[:1]) for s in ssd.ssm] == [(4, 4)] * len(plain.ssm)
    assert len(ssd.ssm) == (1 if causal else 2)
    with torch.no_grad():
        ssd.p.fill_(0.5)
    plain.load_state_dict(as_mamba1(ssd.state_dict(), OPTS["d_state"]))
    x = torch.randn(2, L, DIM)
    y = run(ssd, x)
    torch.testing.assert_close(y, run(plain, x), rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        ssd.ssm[0].A_log[0] -= 3.0     # head 0 of the forward scan remembers 20x longer
    assert (run(ssd, x) - y).abs().max() > 1e-3 * y.abs().max()   # (the equality holds to ~1e-8)
    with pytest.raises(ValueError, match=r"^mixer .infomamba.: ssm_heads=5 must divide the SSM.s inner width 32 "):
        build(ssm_heads=5)


@pytest.mark.parametrize("heads", [None, 2], ids=["mamba1", "ssd"])
def test_the_kernel_path_matches_the_reference_path(monkeypatch, heads):
    """The whole bidirectional mixer on its Triton kernels (the fused SSM op in either form, the gated readout, the
    concept filter's kernels; in the interpreter on CPU) against INFOMAMBA_KERNELS=reference: output and every
    parameter gradient, with a padded sample. Eval mode (hash buckets by argmax, no Gumbel draw), P and F opened
    so that both the injection and the readout carry h; widths the SSD kernels take (16 channels a head, 16 states)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    m = build_mixer("infomamba", DIM, **{**OPTS, "d_state": 16}, ssm_heads=heads).to(device).eval()
    with torch.no_grad():
        m.p.fill_(0.7)
        m.f.fill_(-0.6)
    x = torch.randn(2, L, DIM, device=device)
    mask = torch.zeros(2, L, dtype=torch.bool, device=device)
    mask[1, 31:] = True
    results = []
    for mode in ("triton", "reference"):
        monkeypatch.setenv("INFOMAMBA_KERNELS", mode)
        m.zero_grad()
        y = m(x, mask, None)[0]
        y.square().sum().backward()
        results.append([y.detach()] + [p.grad.clone() for p in m.parameters() if p.grad is not None])
    assert len(results[0]) == len(results[1]) > 10
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=2e-4, atol=2e-5 * want.abs().max().item())


@pytest.mark.parametrize("chunk", [None, 0, -1])
def test_causal_needs_a_chunk_size(chunk):
    """Without chunks the filter pools the whole sequence, the future included: refused when built, not leaked."""
    with pytest.raises(ValueError, match=rf"causal infomamba needs chunk, an int >= 1 .*got {chunk!r}"):
        build_mixer("infomamba", 16, causal=True, chunk=chunk)
    build_mixer("infomamba", 16, causal=False, chunk=chunk)  # bidirectional: the chunk is not used


@pytest.mark.parametrize("chunk", [True, 2.0])
def test_a_chunk_that_is_no_whole_number_is_refused_either_way(chunk):
    for causal in (True, False):
        with pytest.raises(ValueError, match=rf"mixer 'infomamba': chunk must be a whole number or null, got {chunk}"):
            build_mixer("infomamba", 16, causal=causal, chunk=chunk)


def _reported(aux: MixerAux) -> list[str]:
    return [f.name for f in dataclasses.fields(aux) if getattr(aux, f.name) is not None]


@pytest.mark.parametrize("variant, kernels, terms", [
    ("full", "reference", ["h_pool", "r_pool", "mi_hash", "k_eff"]),
    ("full", "triton", ["h_pool", "r_pool", "mi_hash", "k_eff"]),
    ("no_imf", "reference", ["h_pool", "r_pool", "mi_hash", "k_eff"]),
    ("static_rr", "reference", ["h_pool", "r_pool", "mi_hash", "k_eff"]),
    ("no_ssm", "reference", ["h_pool", "mi_hash", "k_eff"]),
    ("no_filter", "reference", ["r_pool"]),
])
def test_a_prediction_leaves_out_the_loss_terms_and_gives_the_same_output(variant, kernels, terms, monkeypatch):
    """Inside `without_training_terms` no `MixerAux` field is formed and the output is bit for bit the one that
    reports them (eval mode: buckets by argmax), with padding; after it the terms are reported again."""
    monkeypatch.setenv("INFOMAMBA_KERNELS", kernels)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    m = build(variant).to(device)
    x = torch.randn(2, L, DIM, device=device)
    mask = torch.zeros(2, L, dtype=torch.bool, device=device)
    mask[1, 29:] = True
    with torch.no_grad():
        y, aux = m(x, mask, None)
        with without_training_terms():
            assert not training_terms()
            y_predicted, aux_predicted = m(x, mask, None)
        _, aux_after = m(x, mask, None)
    assert torch.equal(y_predicted, y)
    assert _reported(aux) == _reported(aux_after) == terms
    assert _reported(aux_predicted) == []


def test_the_terms_come_back_after_a_prediction_that_raised():
    with pytest.raises(RuntimeError, match="stop"):
        with without_training_terms():
            raise RuntimeError("stop")
    assert training_terms()


def test_a_prediction_in_one_thread_leaves_another_threads_terms_on():
    inside, release, seen = threading.Event(), threading.Event(), []

    def predict():
        with without_training_terms():
            inside.set()
            release.wait(10)
    thread = threading.Thread(target=predict)
    thread.start()
    assert inside.wait(10)
    seen.append(training_terms())
    release.set()
    thread.join()
    assert seen == [True]


def test_a_compiled_mixer_follows_the_switch(monkeypatch):
    """torch.compile guards on the switch: the compiled mixer reports the terms in training and leaves them out in a
    prediction, with no graph break either way."""
    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch._dynamo.reset()
    m = build().to(device)
    x = torch.randn(2, L, DIM, device=device)
    compiled = torch.compile(m, backend="eager", fullgraph=True)
    with torch.no_grad():
        reported = _reported(compiled(x, None, None)[1])
        with without_training_terms():
            predicted = _reported(compiled(x, None, None)[1])
    assert reported == ["h_pool", "r_pool", "mi_hash", "k_eff"] and predicted == []
