import pytest
import torch

from compiled_saves import compiled_saves
from infomamba.layers.concepts import (ConceptFilter, ConceptMixing, effective_concepts, pool_concepts, readout,
                                      scatter_concepts)
from infomamba.layers.pooling import masked_mean
from infomamba.ops.concept_assign import entropy_budget, sparse_assign_reference
from infomamba.ops.hash_bucket import bucket_nll_reference


def test_entropy_budget_spans_one_to_q_max():
    k = 10
    uniform = torch.full((1, 1, k), 1.0 / k)
    onehot = torch.zeros(1, 1, k)
    onehot[..., 3] = 1
    assert entropy_budget(uniform, 8).item() == 8
    assert entropy_budget(onehot, 8).item() == 1


def test_sparse_assign_keeps_top_q_inside_candidates_and_renormalises():
    R = torch.tensor([[[0.4, 0.3, 0.2, 0.1]]])
    candidate = torch.tensor([[[0.0, 1.0, 1.0, 1.0]]])
    _, R_bar = sparse_assign_reference(R.log(), candidate, q_max=3)  # H(R) / log 4 = 0.92: q = 3
    torch.testing.assert_close(R_bar, torch.tensor([[[0.0, 0.5, 1 / 3, 1 / 6]]]))
    _, R_bar = sparse_assign_reference(torch.tensor([[[8.0, 1.0, 0.0, 0.0]]]), candidate, q_max=3)  # q = 1
    torch.testing.assert_close(R_bar, torch.tensor([[[0.0, 1.0, 0.0, 0.0]]]))


def test_sparse_assign_never_keeps_non_candidates_or_passes_them_gradient():
    """A row with fewer candidates than its budget keeps only the candidates; the other concepts get
    neither weight nor a straight-through candidate gradient (top-k would pick them by tie-breaking)."""
    logits = torch.zeros(1, 1, 6, requires_grad=True)  # uniform: q = q_max = 4
    candidate = torch.tensor([[[1.0, 0, 1, 0, 0, 0]]], requires_grad=True)
    R, R_bar = sparse_assign_reference(logits, candidate, q_max=4)
    torch.testing.assert_close(R_bar, torch.tensor([[[0.5, 0, 0.5, 0, 0, 0]]]))
    (R_bar * torch.arange(6.0)).sum().backward()
    assert torch.count_nonzero(candidate.grad[0, 0, [1, 3, 4, 5]]) == 0
    assert candidate.grad[0, 0, 2] > 0 > candidate.grad[0, 0, 0]


def test_pooling_and_scatter_equal_the_weighted_sums():
    B, L, k, D = 2, 12, 7, 5
    x = torch.randn(B, L, D)
    R_bar = torch.rand(B, L, k) * (torch.rand(B, L, k) < 0.4)
    pad = torch.zeros(B, L, dtype=torch.bool)
    pad[1, 9:] = True
    Z, mass = pool_concepts(x, R_bar, pad, chunk=None)
    for b in range(B):
        for i in range(k):
            w = R_bar[b, :, i] * ~pad[b]
            torch.testing.assert_close(mass[b, 0, i], w.sum())
            torch.testing.assert_close(Z[b, 0, i], (w[:, None] * x[b]).sum(0) / w.sum().clamp_min(1e-6))
    Zt = torch.randn(B, 1, k, D)
    want = torch.stack([sum(R_bar[b, :, i, None] * Zt[b, 0, i] for i in range(k)) for b in range(B)])
    torch.testing.assert_close(scatter_concepts(Zt, R_bar, None), want)


@pytest.mark.parametrize("L,chunk", [(40, None), (5, None), (40, 8)], ids=["k<L", "k>L", "causal"])
def test_readout_is_eq10_whichever_side_w_u_acts_on(L, chunk):
    """h = W_U sum_i R_bar_ti z~_i (Eq. 10). With fewer concept rows than tokens (k = 7 < L = 40) W_U acts on
    the concepts, and nothing of shape (B, L, d) is kept for its gradient; otherwise on the tokens. h's recipe gives
    h again, bitwise."""
    B, k, D, E = 2, 7, 5, 9
    groups = 1 if chunk is None else -(-L // chunk)
    Z = torch.randn(B, groups, k, D, requires_grad=True)
    R_bar = torch.rand(B, L, k) * (torch.rand(B, L, k) < 0.5)
    w_u = torch.nn.Linear(D, E, bias=False)
    saved_shapes = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved_shapes.append(tuple(t.shape)) or t, lambda t: t):
        h, recipe, pooled = readout(Z, R_bar, w_u, chunk)
    assert pooled is None
    torch.testing.assert_close(h, w_u(scatter_concepts(Z, R_bar, chunk)))
    token_rows = [shape for shape in saved_shapes if shape in ((B, L, D), (B * L, D))]
    assert bool(token_rows) == (groups * k >= L), saved_shapes
    with torch.no_grad():
        torch.testing.assert_close(recipe(), h, rtol=0, atol=0)
    h.sum().backward()
    assert Z.grad is not None and w_u.weight.grad is not None


@pytest.mark.parametrize("L,chunk", [(40, None), (5, None), (40, 8)], ids=["k<L", "k>L", "causal"])
def test_compiled_the_readers_of_h_keep_its_last_matmul_inputs_not_h(L, chunk):
    """Under torch.compile h's recipe does not run (saved-tensor hooks are eager), so `readout` makes h with
    `recomputed`: a reader that saves h (here h * h) leaves the partitioner to redo h's last matmul in the backward,
    and no (B, L, E) tensor is saved; the gradients are the eager ones."""
    B, k, D, E = 2, 7, 5, 9
    groups = 1 if chunk is None else -(-L // chunk)
    Z = torch.randn(B, groups, k, D, requires_grad=True)
    R_bar = torch.rand(B, L, k) * (torch.rand(B, L, k) < 0.5)
    w_u = torch.nn.Linear(D, E, bias=False)

    def loss(Z):
        h = readout(Z, R_bar, w_u, chunk)[0]
        return (h * h).sum()

    value, saved = compiled_saves(loss, Z)
    assert (B, L, E) not in saved and (B * L, E) not in saved, saved
    value.backward()
    compiled_grads = Z.grad.clone(), w_u.weight.grad.clone()
    Z.grad = w_u.weight.grad = None
    loss(Z).backward()
    torch.testing.assert_close(compiled_grads, (Z.grad, w_u.weight.grad))


def test_causal_pooling_sees_completed_chunks_only():
    B, L, k, D, C = 1, 10, 4, 3, 4
    x = torch.randn(B, L, D)
    R_bar = torch.rand(B, L, k)
    Z, mass = pool_concepts(x, R_bar, None, chunk=C)
    assert Z.shape[1] == 3
    assert mass[:, 0].sum() == 0
    for j in range(1, 3):
        end = j * C
        want_mass = R_bar[:, :end].sum(1)
        torch.testing.assert_close(mass[:, j], want_mass)
        torch.testing.assert_close(Z[:, j], (R_bar[:, :end].transpose(1, 2) @ x[:, :end]) / want_mass[..., None])
    Zt = torch.randn(B, 3, k, D)
    h = scatter_concepts(Zt, R_bar, chunk=C)
    for t in range(L):
        torch.testing.assert_close(h[:, t], (R_bar[:, t, :, None] * Zt[:, t // C]).sum(1))


def k_eff(filter_: ConceptFilter, x):
    with torch.no_grad():
        return filter_(x)[1]["k_eff"].item()


def test_k_eff_follows_temperature_and_budget():
    x = torch.randn(4, 64, 16)
    filt = ConceptFilter(16, 16, k_max=40, d_concept=16, n_buckets=1, q_max=8).eval()
    wide = k_eff(filt, x)
    filt.tau_assign = 1e-3
    sharp = k_eff(filt, x)
    filt.tau_assign, filt.q_max = 0.7, 1
    one = k_eff(filt, x)
    assert sharp < wide and one < wide, (sharp, one, wide)


def test_hash_buckets_restrict_concepts():
    """With many buckets, a token's kept concepts all belong to its bucket's candidate set."""
    filt = ConceptFilter(16, 16, k_max=30, d_concept=16, n_buckets=4, q_max=8).eval()
    x = torch.randn(2, 20, 16)
    b, candidate = filt.hash_tokens(x, filt.bucket_dirs())
    R, R_bar = sparse_assign_reference(filt.assign_logits(x), candidate, 8)
    assert torch.all((candidate > 0) | (R_bar == 0))
    assert torch.count_nonzero(R_bar, dim=-1).max() <= 8
    assert filt.mi_hash_loss(R, b, filt.bucket_dirs(), None).item() > 0
    assert candidate.sum(-1).min() < 30  # buckets actually narrow the candidate set


def test_concept_mixing_is_eq9_over_the_used_concepts():
    """Z~ = softmax(Q K^T / sqrt(d_c)) V with Q, K, V from the three Linear layers (Eq. 9), keys restricted to the
    concepts with mass; a sample with no used concept gets zeros."""
    mixing = ConceptMixing(12, 4)
    Z = torch.randn(3, 1, 6, 12)
    mass = torch.rand(3, 1, 6)
    mass[0, 0, [1, 4]] = 0.0
    mass[2] = 0.0
    out = mixing(Z, mass)
    q, k, v = mixing.q(Z), mixing.k(Z), mixing.v(Z)
    for s, used in ((0, [0, 2, 3, 5]), (1, list(range(6)))):
        attn = (q[s, 0] @ k[s, 0, used].t() / 2.0).softmax(-1)
        torch.testing.assert_close(out[s, 0], attn @ v[s, 0, used])
    assert torch.all(out[2] == 0)
    out.sum().backward()
    weights = (mixing.q.weight, mixing.k.weight, mixing.v.weight)
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in weights)


def test_mi_hash_loss_averages_over_real_tokens_only():
    filt = ConceptFilter(8, 8, k_max=10, d_concept=8, n_buckets=4).eval()
    x = torch.randn(2, 6, 8)
    b, candidate = filt.hash_tokens(x, filt.bucket_dirs())
    R, _ = sparse_assign_reference(filt.assign_logits(x), candidate, 4)
    pad = torch.zeros(2, 6, dtype=torch.bool)
    pad[0, 3:] = True
    dirs = filt.bucket_dirs()
    per_token = [filt.mi_hash_loss(R[i:i + 1, j:j + 1], b[i:i + 1, j:j + 1], dirs, None)
                 for i in range(2) for j in range(6)]
    real = [v for v, p in zip(per_token, pad.flatten()) if not p]
    torch.testing.assert_close(filt.mi_hash_loss(R, b, dirs, pad), torch.stack(real).mean())
    torch.testing.assert_close(filt.mi_hash_loss(R, b, dirs, None), torch.stack(per_token).mean())


def test_the_mi_hash_likelihood_is_fp32_under_bf16_autocast_as_the_kernel_computes_it():
    """The CPU reference's product ran in bf16 under autocast, where the Triton kernel computes in fp32; on the meta
    device (`infomamba summary`) there is no autocast to turn off."""
    filt = ConceptFilter(8, 8, k_max=10, d_concept=8, n_buckets=4).eval()
    x = torch.randn(2, 6, 8)
    b, candidate = filt.hash_tokens(x, filt.bucket_dirs())
    R, _ = sparse_assign_reference(filt.assign_logits(x), candidate, 4)
    dirs = filt.bucket_dirs()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        u = R @ filt.centers  # in bf16 on either path
        got = filt.mi_hash_loss(R, b, dirs, None)
    expected = bucket_nll_reference(u, b, dirs, filt.tau_hash).mean()
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    meta = ConceptFilter(8, 8, k_max=10, d_concept=8, n_buckets=4).to("meta")
    assert meta.mi_hash_loss(R.to("meta"), b.to("meta"), meta.bucket_dirs(), None).device.type == "meta"


def test_effective_concepts_counts_concepts_with_weight_from_a_real_token():
    R_bar = torch.zeros(2, 4, 5)
    R_bar[0, 0, 1] = R_bar[0, 3, 2] = 0.5       # sample 0: concepts 1, 2
    R_bar[1, 1, 4] = 1.0                         # sample 1: concept 4, and concept 0 from a padded token only
    R_bar[1, 3, 0] = 1.0
    pad = torch.zeros(2, 4, dtype=torch.bool)
    pad[1, 3] = True
    assert effective_concepts(R_bar, pad).item() == 1.5
    assert effective_concepts(R_bar, None).item() == 2.0


def causal_filter(chunk=4):
    """A float64 causal filter in eval mode (hash buckets by argmax): its output is a function of its input."""
    torch.manual_seed(0)
    return ConceptFilter(8, 6, k_max=12, d_concept=8, n_buckets=2, q_max=3, chunk=chunk).double().eval()


def padded(x, lefts, rights):
    """Sample i of the batch: `lefts[i]` padding tokens (random, as a collator's garbage), x (1, n, D), then
    `rights[i]`; every row as long as the longest. Returns the batch and its padding mask."""
    length = x.shape[1] + max(l + r for l, r in zip(lefts, rights))
    batch = torch.randn(len(lefts), length, x.shape[2], dtype=x.dtype)
    mask = torch.ones(len(lefts), length, dtype=torch.bool)
    for i, left in enumerate(lefts):
        batch[i, left:left + x.shape[1]] = x[0]
        mask[i, left:left + x.shape[1]] = False
    return batch, mask


@pytest.mark.parametrize("left", [1, 2, 3, 5, 7])
def test_causal_filter_is_invariant_to_left_padding(left):
    """A sample left-padded by tokens that are no multiple of the chunk gives, at its real positions, the output it
    gives alone: its chunks are counted from its first real token, not from position 0."""
    filt, n = causal_filter(), 18
    x = torch.randn(1, n, 8, dtype=torch.float64)
    batch, mask = padded(x, [left], [0])
    with torch.no_grad():
        alone, got = filt(x)[0], filt(batch, mask)[0]
    assert alone[:, 4:].abs().min() > 0  # every chunk after the first reads concepts
    torch.testing.assert_close(got[:, left:], alone)


def test_causal_filter_is_invariant_to_left_and_right_padding_in_one_batch():
    """Samples padded on the left, the right or both, each by its own amount, in one batch."""
    filt, n = causal_filter(), 18
    x = torch.randn(1, n, 8, dtype=torch.float64)
    lefts, rights = [0, 1, 3, 6, 0, 9], [5, 2, 0, 3, 9, 1]
    batch, mask = padded(x, lefts, rights)
    with torch.no_grad():
        alone, got = filt(x)[0], filt(batch, mask)[0]
    for i, left in enumerate(lefts):
        torch.testing.assert_close(got[i, left:left + n], alone[0])


@pytest.mark.parametrize("left,t0", [(3, 9), (6, 13), (0, 11)])
def test_causal_filter_with_padding_is_exactly_causal(left, t0):
    """With left and right padding, outputs before t0 ignore the real tokens from t0 on, bitwise (float64: not even
    through rounding); t0 lies inside a chunk of the sample's real tokens. Outputs in later chunks do change."""
    filt, n = causal_filter(), 18
    x = torch.randn(1, n, 8, dtype=torch.float64)
    batch, mask = padded(x, [left], [2])
    later = batch.clone()
    later[:, t0:left + n] = torch.randn(1, left + n - t0, 8, dtype=torch.float64)
    with torch.no_grad():
        y, y2 = filt(batch, mask)[0], filt(later, mask)[0]
    assert torch.equal(y[:, :t0], y2[:, :t0])
    assert (y[:, t0:left + n] - y2[:, t0:left + n]).abs().max() > 1e-6


@pytest.mark.parametrize("L,chunk,lefts,rights", [
    (40, None, [0, 0], [0, 0]), (40, None, [0, 3], [5, 1]), (5, None, [0, 1], [2, 0]),
    (18, 4, [0, 0], [0, 0]), (18, 4, [0, 3, 6], [5, 2, 0]), (18, 4, [5, 0], [0, 5])],
    ids=["bidirectional", "bidirectional-padded", "k>L-padded", "causal", "causal-padded", "causal-one-all-padding"])
def test_the_pooled_stream_is_the_mean_of_h_over_real_tokens_with_its_gradients(L, chunk, lefts, rights):
    """`token_stream`'s third output (Eq. 10 folded into the mean, `readout`) gives masked_mean(h) and the same
    gradients to the input and every parameter, with W_U on either side, causal chunks, padding on either side and
    in the chunk layout, and a sample that is all padding (its mean 0)."""
    torch.manual_seed(0)
    filt = ConceptFilter(8, 6, k_max=12, d_concept=8, n_buckets=2, q_max=3, chunk=chunk).double().eval()
    x, mask = padded(torch.randn(1, L, 8, dtype=torch.float64), lefts, rights)
    if lefts == [5, 0]:
        mask[0] = True
    weight = torch.randn(len(lefts), 6, dtype=torch.float64)

    def grads(pool):
        x_ = x.clone().requires_grad_()
        filt.zero_grad()
        h, _, pooled = filt.token_stream(*filt.mixed_concepts(x_, mask)[:2], mask)
        pooled = pool(h, pooled)
        (pooled * weight).sum().backward()
        return pooled.detach(), [x_.grad] + [p.grad for p in filt.parameters() if p.grad is not None]

    want, want_grads = grads(lambda h, pooled: masked_mean(h, mask))
    got, got_grads = grads(lambda h, pooled: pooled)
    assert want.abs().max() > 1e-3
    torch.testing.assert_close(got, want)
    assert len(got_grads) == len(want_grads) > 3
    for a, b in zip(got_grads, want_grads):
        torch.testing.assert_close(a, b)
