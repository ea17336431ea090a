import math

import torch

from infomamba.concepts import (ConceptFilter, SparseAssignment, entropy_budget, pool_concepts,
                                scatter_concepts, sparsify)


def test_entropy_budget_spans_one_to_q_max():
    k = 10
    uniform = torch.full((1, 1, k), 1.0 / k)
    onehot = torch.zeros(1, 1, k)
    onehot[..., 3] = 1
    assert entropy_budget(uniform, 8).item() == 8
    assert entropy_budget(onehot, 8).item() == 1


def test_sparsify_keeps_top_q_inside_candidates_and_renormalises():
    R = torch.tensor([[[0.4, 0.3, 0.2, 0.1]]])
    candidate = torch.tensor([[[0.0, 1.0, 1.0, 1.0]]])
    out = sparsify(R, candidate, torch.tensor([[2]]), q_max=3)
    kept = {int(i): float(w) for i, w in zip(out.index[0, 0], out.weight[0, 0]) if w > 0}
    assert set(kept) == {1, 2}
    assert math.isclose(kept[1], 0.6, rel_tol=1e-5) and math.isclose(sum(kept.values()), 1.0, rel_tol=1e-6)


def dense_R(assign: SparseAssignment, k: int) -> torch.Tensor:
    B, L, _ = assign.index.shape
    return torch.zeros(B, L, k).scatter_add_(2, assign.index, assign.weight)


def test_pooling_and_scatter_equal_the_dense_products():
    B, L, k, D, q = 2, 12, 7, 5, 3
    x = torch.randn(B, L, D)
    weight = torch.rand(B, L, q)
    assign = SparseAssignment(torch.randint(0, k, (B, L, q)), weight / weight.sum(-1, keepdim=True))
    Rb = dense_R(assign, k)
    Z, mass = pool_concepts(x, assign, None, k, chunk=None)
    torch.testing.assert_close(mass[:, 0], Rb.sum(1))
    torch.testing.assert_close(Z[:, 0], (Rb.transpose(1, 2) @ x) / Rb.sum(1).clamp_min(1e-6)[..., None])
    Zt = torch.randn(B, 1, k, D)
    torch.testing.assert_close(scatter_concepts(Zt, assign, None), Rb @ Zt[:, 0])


def test_causal_pooling_sees_completed_chunks_only():
    B, L, k, D, q, C = 1, 10, 4, 3, 2, 4
    x = torch.randn(B, L, D)
    weight = torch.rand(B, L, q)
    assign = SparseAssignment(torch.randint(0, k, (B, L, q)), weight / weight.sum(-1, keepdim=True))
    Rb = dense_R(assign, k)
    Z, mass = pool_concepts(x, assign, None, k, chunk=C)
    assert Z.shape[1] == 3
    assert mass[:, 0].sum() == 0
    for j in range(1, 3):
        end = j * C
        want_mass = Rb[:, :end].sum(1)
        torch.testing.assert_close(mass[:, j], want_mass)
        torch.testing.assert_close(Z[:, j], (Rb[:, :end].transpose(1, 2) @ x[:, :end]) / want_mass.clamp_min(1e-6)[..., None])


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
    R = filt.assign(x)
    candidate, mi = filt.bucket(x, R, None)
    assign = sparsify(R, candidate, torch.full((2, 20), 8), 8)
    members = candidate.gather(2, assign.index)
    assert torch.all((members > 0) | (assign.weight == 0))
    assert mi.item() > 0
    assert candidate.sum(-1).min() < 30  # buckets actually narrow the candidate set


def test_empty_bucket_falls_back_to_all_concepts():
    filt = ConceptFilter(8, 8, k_max=5, d_concept=8, n_buckets=3)
    with torch.no_grad():
        filt.buckets.copy_(torch.stack([filt.centers.mean(0), -filt.centers.mean(0), torch.zeros(8) + 1e-3]))
        filt.centers.copy_(filt.buckets[0].expand(5, -1) + 0.01 * torch.randn(5, 8))
    member = filt.concept_buckets()
    assert member[0].sum() == 5
    assert member[1].sum() == 5 and member[2].sum() == 5
