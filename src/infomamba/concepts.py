"""The concept-bottleneck linear filtering layer (InfoMamba §4.1, Eq. 7-10).

Each step is one named function or method:
  assignment  R = softmax(<W_r x_t, u_i> / tau)                               (Eq. 7)
  bucketing   hash head p(b | x_t), candidate sets C(b) = concepts nearest to e_b, MI-hash loss (Eq. 8)
  budget      q_t = 1 + round((q_max - 1) H(R_t) / log k_max); top-q_t inside C(b_t) -> R_bar
  pooling     Z = R_bar^T X (normalised by concept mass, see `pool_concepts`)
  mixing      Z~ = softmax((Z W_Q)(Z W_K)^T / sqrt(d_c)) Z W_V                  (Eq. 9)
  scatter     h_t = W_U sum_i R_bar_{t,i} z~_i                                   (Eq. 10)

Gather and scatter use each token's top-q_max indices only, so the work is O(n q d + k^2 d), never a
dense n x k product after assignment and never an n x n tensor.

Causal mode (chunk-causal, DESIGN.md): tokens are grouped in chunks of `chunk`; the concept sums of
chunk j are the sums over chunks < j (an exclusive prefix over chunk totals), mixing runs once per
chunk boundary, and the tokens of chunk j read the mixed concepts of chunks < j. The first chunk
reads nothing (h = 0 there); its own tokens reach it through the causal scan. Cost
O(n q d + (n / C) k^2 d), memory O((n / C) k d).

Readings where the paper is open:
- Z is mass-normalised (sum_t R_bar_ti x_t / sum_t R_bar_ti): Eq. 9's softmax would otherwise see
  concept vectors whose scale grows with sequence length; it is the paper's Z up to a per-concept
  positive scale. Concepts with zero mass (used by no real token) are masked out of Eq. 9's keys.
- Eq. 9 divides by sqrt(d); Q and K live in d_c dimensions here, so sqrt(d_c).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class SparseAssignment:
    """R_bar in top-q form: for each token, `index` (B, L, q_max) concepts and `weight` (B, L, q_max)."""
    index: torch.Tensor
    weight: torch.Tensor


def entropy_budget(R: torch.Tensor, q_max: int) -> torch.Tensor:
    """q_t = 1 + round((q_max - 1) * H(R_t) / log k): (B, L, k) -> (B, L) long in [1, q_max]."""
    H = -(R * torch.log(R.clamp_min(1e-12))).sum(-1)
    q = 1 + torch.round((q_max - 1) * H / math.log(R.shape[-1]))
    return q.clamp(1, q_max).long()


def sparsify(R: torch.Tensor, candidate: torch.Tensor, q: torch.Tensor, q_max: int) -> SparseAssignment:
    """Keep each token's top-q_t concepts among its candidates and renormalise (R -> R_bar).

    R: (B, L, k) soft assignment; candidate: (B, L, k) in {0, 1} (straight-through gradients allowed);
    q: (B, L) budget. Ranks >= q_t get weight 0 (kept in the index so shapes stay fixed).
    """
    masked = R * candidate
    values, index = masked.topk(min(q_max, R.shape[-1]), dim=-1)
    ranks = torch.arange(values.shape[-1], device=R.device)
    values = values * (ranks < q.unsqueeze(-1))
    weight = values / values.sum(-1, keepdim=True).clamp_min(1e-12)
    return SparseAssignment(index, weight)


def effective_concepts(R_bar: SparseAssignment, padding_mask: torch.Tensor | None, k: int) -> torch.Tensor:
    """k_eff: concepts with weight from at least one real token of a sample, averaged over samples."""
    weight = R_bar.weight.detach()
    if padding_mask is not None:
        weight = weight.masked_fill(padding_mask[..., None], 0.0)
    B = weight.shape[0]
    usage = weight.new_zeros(B, k).scatter_add_(1, R_bar.index.reshape(B, -1), weight.reshape(B, -1))
    return (usage > 0).sum(-1).float().mean()


def chunk_ids(length: int, chunk: int | None, device) -> torch.Tensor:
    """Chunk id of every position (all zeros in bidirectional mode, chunk=None)."""
    pos = torch.arange(length, device=device)
    return pos // chunk if chunk else torch.zeros_like(pos)


def pool_concepts(x: torch.Tensor, R_bar: SparseAssignment, padding_mask: torch.Tensor | None, k: int,
                  chunk: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Z = R_bar^T X per sample (bidirectional) or per chunk boundary over completed chunks (causal).

    Returns Z: (B, G, k, D) mass-normalised concept vectors and mass: (B, G, k), with G = 1
    bidirectional or G = number of chunks causal (group j holds chunks < j).
    """
    B, L, D = x.shape
    q = R_bar.index.shape[-1]
    weight = R_bar.weight if padding_mask is None else R_bar.weight.masked_fill(padding_mask[..., None], 0.0)
    cid = chunk_ids(L, chunk, x.device)
    groups = int(cid[-1]) + 1
    flat = (cid.view(1, L, 1) * k + R_bar.index).reshape(B, L * q)
    contrib = (weight.unsqueeze(-1) * x.unsqueeze(2)).reshape(B, L * q, D)
    num = x.new_zeros(B, groups * k, D).scatter_add_(1, flat.unsqueeze(-1).expand(-1, -1, D), contrib)
    mass = weight.new_zeros(B, groups * k).scatter_add_(1, flat, weight.reshape(B, L * q))
    num, mass = num.view(B, groups, k, D), mass.view(B, groups, k)
    if chunk:
        num = num.cumsum(1) - num
        mass = mass.cumsum(1) - mass
    return num / mass.clamp_min(1e-6).unsqueeze(-1), mass


def scatter_concepts(Z_mixed: torch.Tensor, R_bar: SparseAssignment, chunk: int | None) -> torch.Tensor:
    """sum_i R_bar_{t,i} z~_i for every token, reading its chunk group's concepts (Eq. 10 before W_U)."""
    B, G, k, D = Z_mixed.shape
    L, q = R_bar.index.shape[1:]
    cid = chunk_ids(L, chunk, Z_mixed.device)
    flat = (cid.view(1, L, 1) * k + R_bar.index).reshape(B, L * q, 1).expand(-1, -1, D)
    gathered = Z_mixed.reshape(B, G * k, D).gather(1, flat).view(B, L, q, D)
    return (R_bar.weight.unsqueeze(-1) * gathered).sum(2)


class ConceptMixing(nn.Module):
    """Eq. 9: softmax attention among the k concepts only (or Psi = I, Z~ = Z W_V, when `mix=False`)."""

    def __init__(self, dim: int, d_concept: int, mix: bool = True):
        super().__init__()
        self.mix = mix
        self.v = nn.Linear(dim, dim, bias=False)
        if mix:
            self.q = nn.Linear(dim, d_concept, bias=False)
            self.k = nn.Linear(dim, d_concept, bias=False)

    def forward(self, Z: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
        """Z: (..., k, D), mass: (..., k) -> Z~ (..., k, D); concepts without mass are not attended to."""
        V = self.v(Z)
        if not self.mix:
            return V
        used = mass > 0
        scores = self.q(Z) @ self.k(Z).transpose(-1, -2) / math.sqrt(self.q.out_features)
        scores = scores.masked_fill(~used.unsqueeze(-2), torch.finfo(scores.dtype).min)
        attn = scores.softmax(-1) * used.any(-1, keepdim=True).unsqueeze(-1)
        return attn @ V


class ConceptFilter(nn.Module):
    """The linear filtering layer: x (B, L, D) -> h (B, L, out_dim) plus loss terms and k_eff.

    Args:
        dim: token width D.  out_dim: width of h (the SSM's inner width, W_U: D -> out_dim).
        k_max: concept centres.  d_concept: width of W_r x, the centres, and Eq. 9's Q/K.
        tau_assign: Eq. 7 temperature.  n_buckets: B_hash.  tau_hash: Eq. 8 temperature.
        q_max: largest per-token budget.  chunk: causal chunk size (None = bidirectional).
        mix: Eq. 9 attention among concepts (False = `no_mix`, Psi = I).
        static_len: if set, `static_rr`: R is an input-agnostic learned R_0 (one row per position up
            to static_len), no hash bucketing (it would make R_bar input-dependent again).
    """

    def __init__(self, dim: int, out_dim: int, *, k_max: int = 100, d_concept: int = 64,
                 tau_assign: float = 0.7, n_buckets: int = 16, tau_hash: float = 0.1, q_max: int = 8,
                 chunk: int | None = None, mix: bool = True, static_len: int | None = None):
        super().__init__()
        self.k_max, self.tau_assign, self.tau_hash, self.q_max, self.chunk = k_max, tau_assign, tau_hash, q_max, chunk
        self.static_len = static_len
        if static_len:
            self.R0 = nn.Parameter(torch.randn(static_len, k_max) * 0.02)
        else:
            self.w_r = nn.Linear(dim, d_concept, bias=False)
            self.centers = nn.Parameter(torch.randn(k_max, d_concept) / math.sqrt(d_concept))
            self.hash_head = nn.Linear(dim, n_buckets)
            self.buckets = nn.Parameter(torch.randn(n_buckets, d_concept) / math.sqrt(d_concept))
        self.mixing = ConceptMixing(dim, d_concept, mix)
        self.w_u = nn.Linear(dim, out_dim, bias=False)

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 7: R (B, L, k_max); `static_rr` reads R_0's first L rows instead."""
        if self.static_len:
            L = x.shape[1]
            if L > self.static_len:
                raise ValueError(f"static_rr holds R_0 for {self.static_len} positions, got a sequence of {L}; "
                                 f"raise mixer_options.static_len")
            return self.R0[:L].softmax(-1).unsqueeze(0).expand(x.shape[0], -1, -1)
        logits = self.w_r(x) @ self.centers.t() / self.tau_assign
        return logits.softmax(-1)

    def concept_buckets(self) -> torch.Tensor:
        """C(b) as a (B_hash, k) 0/1 matrix: each concept joins its nearest bucket embedding (cosine),
        recomputed from the parameters every call; an empty bucket falls back to all concepts."""
        sim = F.normalize(self.centers, dim=-1) @ F.normalize(self.buckets, dim=-1).t()
        member = F.one_hot(sim.argmax(-1), self.buckets.shape[0]).t().float()
        empty = member.sum(-1, keepdim=True) == 0
        return torch.where(empty, torch.ones_like(member), member)

    def bucket(self, x: torch.Tensor, R: torch.Tensor, padding_mask: torch.Tensor | None):
        """Hash each token (Eq. 8): candidate mask (B, L, k) and the MI-hash loss.

        b_t is straight-through Gumbel-softmax in training and the argmax in eval; u_t = sum_i R_ti u_i.
        """
        logits = self.hash_head(x)
        if self.training:
            b = F.gumbel_softmax(logits, tau=1.0, hard=True)
        else:
            b = F.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
        candidate = b @ self.concept_buckets()
        u = R @ self.centers
        sim = F.normalize(u, dim=-1) @ F.normalize(self.buckets, dim=-1).t() / self.tau_hash
        nll = -(b * sim.log_softmax(-1)).sum(-1)
        keep = torch.ones_like(nll) if padding_mask is None else (~padding_mask).to(nll.dtype)
        return candidate, (nll * keep).sum() / keep.sum().clamp_min(1.0)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None):
        """Returns h (B, L, out_dim) and aux {'mi_hash': loss, 'k_eff': mean concepts used per sample}."""
        R = self.assign(x)
        if self.static_len:
            candidate, mi_hash = torch.ones_like(R), x.new_zeros(())
        else:
            candidate, mi_hash = self.bucket(x, R, padding_mask)
        R_bar = sparsify(R, candidate, entropy_budget(R, self.q_max), self.q_max)
        Z, mass = pool_concepts(x, R_bar, padding_mask, self.k_max, self.chunk)
        h = self.w_u(scatter_concepts(self.mixing(Z, mass), R_bar, self.chunk))
        return h, {"mi_hash": mi_hash, "k_eff": effective_concepts(R_bar, padding_mask, self.k_max)}
