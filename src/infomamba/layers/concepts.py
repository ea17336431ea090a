"""The concept-bottleneck linear filtering layer (InfoMamba §4.1, Eq. 7-10).

Each step is one named function or method:
  assignment  R = softmax(<W_r x_t, u_i> / tau)                               (Eq. 7)
  bucketing   hash head p(b | x_t), candidate sets C(b) = concepts nearest to e_b, MI-hash loss (Eq. 8)
  budget      q_t = 1 + round((q_max - 1) H(R_t) / log k_max); top-q_t inside C(b_t) -> R_bar
  pooling     Z = R_bar^T X (normalised by concept mass, see `pool_concepts`)
  mixing      Z~ = softmax((Z W_Q)(Z W_K)^T / sqrt(d_c)) Z W_V                  (Eq. 9)
  scatter     h_t = W_U sum_i R_bar_{t,i} z~_i = sum_i R_bar_{t,i} (W_U z~_i)     (Eq. 10, `readout`)

R_bar is dense (B, L, k) with at most q_max non-zeros a row, so pooling and scatter are batched
matmuls on tensor cores, O(n k d) multiply-adds for a fixed k; never an n x n tensor. An index-based
gather/scatter of the q_max kept entries does fewer multiply-adds, O(n q d), but moves q_max d values
per token through atomics and was measured slower on the GPU (docs/benchmarks.md, concept filter).
Assignment, budget and top-q run fused in one Triton kernel on CUDA (`sparse_assign`).

Causal mode (chunk-causal, DESIGN.md): tokens are grouped in chunks of `chunk`; the concept sums of
chunk j are the sums over chunks < j (an exclusive prefix over chunk totals), mixing runs once per
chunk boundary, and the tokens of chunk j read the mixed concepts of chunks < j. The first chunk
reads nothing (h = 0 there); its own tokens reach it through the causal scan. Cost
O(n k d + (n / C) k^2 d), memory O((n / C) k d). Chunks are counted in each sample's real tokens: a real token's
index is the number of real tokens before it, and chunk j holds indices j C .. (j + 1) C - 1, so a sample's output
at its real tokens does not depend on where its padding lies (left, right or both). With a padding mask, the
pooling Z = R_bar^T X (Eq. 9's input) and Eq. 10's scatter run on each sample's real tokens moved to the front
(`chunk_layout`), and h is moved back: three row gathers and O(B L) index work a layer. They run for every mask,
right padding too: telling left padding apart would take a host sync, which CUDA-graph capture refuses and
torch.compile breaks its graph at. Without a mask the tokens stay in place.

Readings where the paper is open:
- Z is mass-normalised (sum_t R_bar_ti x_t / sum_t R_bar_ti): Eq. 9's softmax would otherwise see
  concept vectors whose scale grows with sequence length; it is the paper's Z up to a per-concept
  positive scale. Concepts with zero mass (used by no real token) are masked out of Eq. 9's keys.
- Eq. 9 divides by sqrt(d); Q and K live in d_c dimensions here, so sqrt(d_c).
- Eq. 10 is linear in z~, so W_U can act on the concepts before the scatter or on the tokens after it
  (`readout`): before, where a sample holds fewer concept rows than tokens (bidirectional, k < L). There
  it costs k d E per sample instead of L d E, and no (B, L, d) tensor is kept for W_U's gradient (at
  1024 px, batch 64, depth 12: 2.2 GiB less activation memory, counted by `benchmarks/saved_activations.py`).
  `readout` also returns h's recipe, its last matmul over tensors that its backward keeps, so that the mixer need
  not keep h itself (`layers/recompute.py`).
"""
from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.concept_assign import sparse_assign
from ..ops.hash_bucket import bucket_members, bucket_nll, gumbel_bucket, one_hot
from .checks import require_positive
from .pooling import masked_token_mean
from .precision import full_precision
from .recompute import recomputed


def masked_rows(t: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the rows (B, L, .) at padded positions."""
    return t if padding_mask is None else t.masked_fill(padding_mask[..., None], 0.0)


def effective_concepts(R_bar: torch.Tensor, padding_mask: torch.Tensor | None) -> torch.Tensor:
    """k_eff: concepts with weight from at least one real token of a sample, averaged over samples."""
    used = masked_rows(R_bar.detach(), padding_mask).any(1)  # R_bar >= 0: a concept is used where any weight is
    return used.sum(-1, dtype=torch.float32).mean()


class Readback(NamedTuple):
    """How Eq. 10 reads the mixed concepts back (`token_stream`): R_bar (B, L, k) in the layout its concepts were
    pooled in, and slot (B, L), the row of R_bar that holds each position's token (None: every token in place)."""
    R_bar: torch.Tensor
    slot: torch.Tensor | None = None


def take_rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """t[b, index[b, i]] for (B, L, F) t and (B, L) index."""
    return t.gather(1, index.unsqueeze(-1).expand(-1, -1, t.shape[-1]))


def chunk_layout(x: torch.Tensor, R_bar: torch.Tensor, padding_mask: torch.Tensor | None,
                 chunk: int | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(x, R_bar, padding_mask, slot) for pooling. Causal with a padding mask: each sample's real tokens first, in
    order (a real token's slot is the number of real tokens before it), then its padding, with R_bar zeroed there;
    chunk j then holds a sample's real tokens j C .. (j + 1) C - 1 wherever its padding lies. Else as they are."""
    if not chunk or padding_mask is None:
        return x, R_bar, padding_mask, None
    real = ~padding_mask
    slot = torch.where(real, real.cumsum(1), real.sum(1, keepdim=True) + padding_mask.cumsum(1)) - 1
    positions = torch.arange(slot.shape[1], device=slot.device).expand_as(slot)
    order = torch.empty_like(slot).scatter_(1, slot, positions)
    return take_rows(x, order), take_rows(masked_rows(R_bar, padding_mask), order), None, slot


def split_chunks(t: torch.Tensor, chunk: int) -> torch.Tensor:
    """(B, L, F) -> (B, G, chunk, F), zero-padding L up to G * chunk."""
    B, L, F_ = t.shape
    groups = -(-L // chunk)
    return F.pad(t, (0, 0, 0, groups * chunk - L)).view(B, groups, chunk, F_)


def pool_concepts(x: torch.Tensor, R_bar: torch.Tensor, padding_mask: torch.Tensor | None,
                  chunk: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Z = R_bar^T X per sample (bidirectional) or per chunk boundary over completed chunks (causal).

    x: (B, L, D), R_bar: (B, L, k) dense. Returns Z: (B, G, k, D) mass-normalised concept vectors and
    mass: (B, G, k), with G = 1 bidirectional or G = number of chunks causal (group j holds chunks < j).
    """
    w = masked_rows(R_bar, padding_mask)
    if chunk:
        w, x = split_chunks(w, chunk), split_chunks(x, chunk)
    else:
        w, x = w.unsqueeze(1), x.unsqueeze(1)
    num = w.transpose(-1, -2).to(x.dtype) @ x
    mass = w.sum(2, dtype=torch.float32)
    if chunk:
        num, mass = exclusive_prefix(num), exclusive_prefix(mass)
    return (num / mass.clamp_min(1e-6).unsqueeze(-1)).to(num.dtype), mass  # mass is fp32: keep a bf16 model bf16


def exclusive_prefix(t: torch.Tensor) -> torch.Tensor:
    """Sums over the groups before each one along dim 1 (zero for the first), formed from those groups alone: the
    inclusive cumsum minus the group itself would round with the group's own (its tokens' future) values."""
    return torch.cat([torch.zeros_like(t[:, :1]), t[:, :-1].cumsum(1)], 1)


def readout(Z_mixed: torch.Tensor, R_bar: torch.Tensor, w_u: nn.Linear, chunk: int | None,
            slot: torch.Tensor | None = None, shares: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, Callable[[], torch.Tensor], torch.Tensor | None]:
    """h = W_U sum_i R_bar_{t,i} z~_i (Eq. 10), with W_U applied on whichever side has fewer rows: the
    (B, G, k, .) concepts when G k < L (then no (B, L, d) scatter output exists), else the tokens. Returns h, its
    recipe: a function that makes h again from what its own backward keeps (the last matmul alone), and with
    `shares` (`token_shares`) h's mean over those tokens (B, out_dim), fp32 or wider, else None.

    Eq. 10 is linear in R_bar, so that mean is W_U sum_g sum_i shares_gi z~_gi: formed from the concepts the scatter
    reads (which their matmul keeps anyway), its gradient reaches R_bar as a (B, G, k) broadcast where h's mean would
    add a (B, L, out_dim) one into h's gradient."""
    groups, k = Z_mixed.shape[1], Z_mixed.shape[2]
    if groups * k < R_bar.shape[1]:
        concepts = w_u(Z_mixed)
        pooled = None if shares is None else weighted_sum(shares, concepts)
        return (recomputed(scatter_concepts, concepts, R_bar, chunk, slot),
                functools.partial(scatter_concepts, concepts.detach(), R_bar.detach(), chunk, slot), pooled)
    tokens = scatter_concepts(Z_mixed, R_bar, chunk, slot)
    pooled = None
    if shares is not None:
        pooled = weighted_sum(shares, Z_mixed)
        with full_precision(pooled.device.type):
            pooled = F.linear(pooled, w_u.weight.to(pooled.dtype))
    return recomputed(w_u, tokens), functools.partial(w_u, tokens.detach()), pooled


def token_shares(R_bar: torch.Tensor, padding_mask: torch.Tensor | None, chunk: int | None,
                 slot: torch.Tensor | None) -> torch.Tensor:
    """(B, G, k), fp32 or wider: the sums of R_bar (`Readback`'s, in its layout) over the real tokens of each chunk
    group (all tokens bidirectional), divided by the sample's real tokens: each concept row's weight in the mean of
    Eq. 10's h over those tokens. R_bar in the chunk layout (`slot` given) is already zero at padding."""
    if slot is None:
        R_bar = masked_rows(R_bar, padding_mask)
    acc = torch.promote_types(R_bar.dtype, torch.float32)
    sums = split_chunks(R_bar, chunk).sum(2, dtype=acc) if chunk else R_bar.sum(1, keepdim=True, dtype=acc)
    if padding_mask is None:
        return sums / R_bar.shape[1]
    return sums / (~padding_mask).sum(1).clamp_min(1)[:, None, None]


def weighted_sum(shares: torch.Tensor, concepts: torch.Tensor) -> torch.Tensor:
    """sum_g sum_i shares_gi c_gi (B, d) for shares (B, G, k) and concepts (B, G, k, d), in shares' dtype or wider;
    keeps `concepts` for backward as it is (no cast copy)."""
    return (shares.unsqueeze(-1) * concepts).sum((1, 2))


def scatter_concepts(Z_mixed: torch.Tensor, R_bar: torch.Tensor, chunk: int | None,
                     slot: torch.Tensor | None = None) -> torch.Tensor:
    """sum_i R_bar_{t,i} z~_i for every token, reading its chunk group's concepts (Eq. 10 before W_U); with
    `slot` (`chunk_layout`), R_bar's rows are in the chunk layout and each position takes its token's row."""
    if not chunk:
        return R_bar.to(Z_mixed.dtype) @ Z_mixed[:, 0]
    out = (split_chunks(R_bar, chunk).to(Z_mixed.dtype) @ Z_mixed).flatten(1, 2)[:, : R_bar.shape[1]]
    return out if slot is None else take_rows(out, slot)


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
        """Z: (..., k, D), mass: (..., k) -> Z~ (..., k, D); concepts without mass are not attended to.

        V, Q and K come from one matmul over the three weights stacked (one launch, one cast of Z, one
        weight gradient matmul in backward, instead of three each); the parameters stay three Linear layers.
        """
        if not self.mix:
            return self.v(Z)
        widths = (self.v.out_features, self.q.out_features, self.k.out_features)
        V, Q, K = F.linear(Z, torch.cat((self.v.weight, self.q.weight, self.k.weight))).split(widths, dim=-1)
        used = mass > 0
        scores = Q @ K.transpose(-1, -2) / math.sqrt(self.q.out_features)
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
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise ValueError(f"the concept filter's chunk must be an int >= 1 (causal) or None (bidirectional), "
                             f"got {chunk!r}")
        require_positive("infomamba", k_max=k_max, d_concept=d_concept, tau_assign=tau_assign, n_buckets=n_buckets,
                         tau_hash=tau_hash, q_max=q_max, static_len=static_len)
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

    def assign_logits(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 7's logits <W_r x_t, u_i> / tau (B, L, k_max); `static_rr` reads R_0's rows instead, row j for a
        sample's j-th real token (where its padding lies, left or right, does not move them)."""
        if self.static_len:
            L = x.shape[1]
            if L > self.static_len:
                raise ValueError(f"static_rr holds R_0 for {self.static_len} positions, got a sequence of {L}; "
                                 f"raise mixer_options.static_len")
            if padding_mask is None:
                return self.R0[:L].unsqueeze(0).expand(x.shape[0], -1, -1)
            return self.R0[((~padding_mask).cumsum(1) - 1).clamp(min=0)]
        return self.w_r(x) @ self.centers.t() / self.tau_assign

    def bucket_dirs(self) -> torch.Tensor:
        """The unit bucket embeddings e_b (B_hash, d_concept) in fp32, formed once a forward for C(b) and Eq. 8's
        term."""
        return F.normalize(self.buckets.float(), dim=-1)

    def hash_tokens(self, x: torch.Tensor, bucket_dirs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 8's bucket b_t (B, L, B_hash one-hot) and the candidate mask b_t C(b) (B, L, k): C(b) holds the
        concepts whose nearest bucket embedding (cosine) is b, recomputed from the parameters every call.

        b_t is a straight-through Gumbel-softmax sample (tau 1) in training and the argmax in eval.
        """
        logits = self.hash_head(x)
        if self.training:
            b = gumbel_bucket(logits, torch.empty(logits.shape, device=x.device).exponential_())
        else:
            b = one_hot(logits.argmax(-1), logits.shape[-1])
        return b, b @ bucket_members(self.centers, bucket_dirs)

    def mi_hash_loss(self, R: torch.Tensor, b: torch.Tensor, bucket_dirs: torch.Tensor,
                     padding_mask: torch.Tensor | None) -> torch.Tensor:
        """Eq. 8: -log p(b_t | u_t) with u_t = sum_i R_ti u_i, over the real tokens (`ops.hash_bucket`), the
        likelihood in fp32 on either path (autocast off: it would run the reference's product in bf16)."""
        u = R @ self.centers.to(R.dtype)
        with full_precision(u.device.type):
            return masked_token_mean(bucket_nll(u, b, bucket_dirs, self.tau_hash), padding_mask)

    def mixed_concepts(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, terms: bool = True):
        """Eq. 7-9: the mixed concepts Z~ (B, G, k, D), the `Readback` (the sparse assignment R_bar, in the layout
        the concepts were pooled in) that Eq. 10 reads them back with (`token_stream`), and
        aux {'mi_hash': loss, 'k_eff': mean concepts used per sample}, empty without `terms` (predictions)."""
        logits = self.assign_logits(x, padding_mask)
        if self.static_len:
            R, R_bar = sparse_assign(logits, torch.ones_like(logits, dtype=torch.float32), self.q_max)
            mi_hash = x.new_zeros((), dtype=torch.float32)
        else:
            bucket_dirs = self.bucket_dirs()
            b, candidate = self.hash_tokens(x, bucket_dirs)
            R, R_bar = sparse_assign(logits, candidate, self.q_max)
            mi_hash = self.mi_hash_loss(R, b, bucket_dirs, padding_mask) if terms else None
        aux = {"mi_hash": mi_hash, "k_eff": effective_concepts(R_bar, padding_mask)} if terms else {}
        x, R_bar, padding_mask, slot = chunk_layout(x, R_bar, padding_mask, self.chunk)
        Z, mass = pool_concepts(x, R_bar, padding_mask, self.chunk)
        return self.mixing(Z, mass), Readback(R_bar, slot), aux

    def token_stream(self, Z_mixed: torch.Tensor, readback: Readback, padding_mask: torch.Tensor | None,
                     pooled: bool = True):
        """Eq. 10: h (B, L, out_dim) from the mixed concepts and the `Readback`, h's recipe, and h's mean over each
        sample's real tokens (B, out_dim), the filter stream Eq. 12-13 read (`readout`; None without `pooled`)."""
        shares = token_shares(readback.R_bar, padding_mask, self.chunk, readback.slot) if pooled else None
        return readout(Z_mixed, readback.R_bar, self.w_u, self.chunk, readback.slot, shares)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None):
        """Returns h (B, L, out_dim) and aux {'mi_hash': loss, 'k_eff': mean concepts used per sample}."""
        Z_mixed, readback, aux = self.mixed_concepts(x, padding_mask)
        return self.token_stream(Z_mixed, readback, padding_mask)[0], aux
