"""Eq. 8's hash bucketing in PyTorch: the candidate sets C(b), the straight-through Gumbel bucket sample b_t and
the MI-hash term -log p(b_t | u_t), the CPU path and the Triton kernels' oracle.

    C(b)  = {i : b = argmax_j <u_i, e_j>}   (all concepts where no concept's nearest bucket is b)

    b_t   = onehot(argmax_j y_tj) - sg(y_t) + y_t,   y_t = softmax(l_t + g_t),  g_t = -log(e_t), e_t ~ Exp(1)
    nll_t = -sum_j b_tj log softmax_j(<u_t / |u_t|, e_j> / tau_hash)

l_t are the hash head's logits, u_t = sum_i R_ti u_i the token's concept mixture and e_j the unit bucket
embeddings; sg is stop-gradient. b_t's value is the one-hot of the sampled bucket and its gradient that of the
softmax (Jang et al. 2017, straight-through; `F.gumbel_softmax(hard=True)` at tau 1, with the Exp(1) draw e_t
passed in so that the kernel and this reference sample the same bucket).

Reading: Eq. 8 writes p(b | u_t) without saying how it is parameterised; here it is a cosine softmax between u_t
and the bucket embeddings at temperature tau_hash, the same embeddings that define the candidate sets C(b).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def one_hot(index: torch.Tensor, n: int) -> torch.Tensor:
    """Float one-hot of `index` over n classes. Unlike F.one_hot, no range check, so no host
    synchronisation (two per call on CUDA, per layer and step); argmax indices are in range."""
    return (index.unsqueeze(-1) == torch.arange(n, device=index.device)).float()


def bucket_members_reference(centers: torch.Tensor, bucket_dirs: torch.Tensor) -> torch.Tensor:
    """C(b) as a (n_buckets, k) 0/1 fp32 matrix: each concept u_i joins the bucket of highest cosine (the unit
    `bucket_dirs` e_j; a concept's norm scales its row of cosines and moves no argmax, so the products rank them);
    an empty bucket falls back to all concepts. Products in fp32 whatever the parameters' dtype or autocast."""
    sim = (centers.float().unsqueeze(1) * bucket_dirs.float()).sum(-1)
    member = one_hot(sim.argmax(-1), bucket_dirs.shape[0]).t()
    return torch.where(member.sum(-1, keepdim=True) == 0, torch.ones_like(member), member)


def gumbel_bucket_reference(logits: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """b (..., n_buckets) fp32: the one-hot of argmax softmax(logits - log noise), with the softmax's gradient.

    noise: Exp(1) samples of logits' shape (fp32). Equals `F.gumbel_softmax(logits.float(), tau=1, hard=True)`
    when that draws the same noise."""
    y = (logits.float() - noise.log()).softmax(-1)
    return one_hot(y.argmax(-1), y.shape[-1]) - y.detach() + y


def bucket_nll_reference(u: torch.Tensor, b: torch.Tensor, bucket_dirs: torch.Tensor, tau_hash: float
                         ) -> torch.Tensor:
    """nll (...,) fp32: -sum_j b_j log softmax_j(<u / |u|, e_j> / tau_hash), computed in fp32 (called with autocast
    off: `ConceptFilter.mi_hash_loss`).

    u: (..., d) concept mixtures, b: (..., n_buckets) bucket weights (one-hot values), bucket_dirs: (n_buckets, d)
    unit bucket embeddings. |u| is clamped at 1e-12 as F.normalize does."""
    sim = F.normalize(u.float(), dim=-1) @ bucket_dirs.float().t() / tau_hash
    return -(b.float() * sim.log_softmax(-1)).sum(-1)
