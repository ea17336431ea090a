"""InfoMamba's training objective (§4.1.2, §4.2.2-4.2.3): Eq. 8, 12, 13, 14.

Eq. 12 and 13 run in fp32 whatever autocast is on: their similarity logits (up to 1 / tau = 10) and batch
correlations would lose most of their precision in bf16 matmuls. A sample whose pooled stream is exactly zero has
no real token (an all-padding sample: `masked_mean` gives it 0), or a stream that reads nothing (the causal
filter's first chunk): Eq. 12's cosine is undefined there and Eq. 13's batch statistics would count it, so both
leave such a sample out, as anchor, candidate and batch member alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .layers.precision import full_precision
from .mixers import MixerAux

_EXCLUDED = -1e4  # less 1 / tau: the logit of a pair Eq. 12 leaves out, 1e4 below any kept (|sim| / tau <= 1 / tau)


def present(z: torch.Tensor) -> torch.Tensor:
    """(..., M) True for the samples whose pooled stream z (..., M, E) is not all zeros (see the module docstring)."""
    return z.detach().ne(0).any(-1)


def supervised_info_nce(z: torch.Tensor, labels: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Eq. 12: -1/M' sum_i log( sum_{p in P(i)} e^{sim(i,p)/tau} / sum_{a != i} e^{sim(i,a)/tau} ).

    z: (..., M, E) pooled streams (leading dims: several layers' streams of one batch, each its own term); labels:
    (M,). Returns the term of each leading index. The sum runs over the M' anchors that have a positive in the batch
    (Eq. 12's 1/M counts all M, but the log of an empty sum is undefined: the other anchors are skipped, and the mean
    is over those left); a batch with none returns 0 (still attached to the graph). Samples with an all-zero z are
    neither anchors nor in any P(i) or denominator (module docstring). No host synchronisation: excluded pairs get a
    logit of -1e4 - 1 / tau (exp underflows to exactly 0 in fp32, as -inf would, but rows with nothing left stay
    finite, so masking them out passes no NaN to the gradient).
    """
    with full_precision(z.device.type):
        keep = present(z)
        z = F.normalize(z.float(), dim=-1)
        sim = z @ z.transpose(-1, -2) / tau
        pairs = keep[..., :, None] & keep[..., None, :] & ~torch.eye(z.shape[-2], dtype=torch.bool, device=z.device)
        excluded = _EXCLUDED - 1.0 / tau
        sim = sim.masked_fill(~pairs, excluded)
        positives = (labels[:, None] == labels[None, :]) & pairs
        has_pos = positives.any(-1)
        log_num = torch.logsumexp(sim.masked_fill(~positives, excluded), dim=-1)
        log_den = torch.logsumexp(sim, dim=-1)
        per_anchor = torch.where(has_pos, log_den - log_num, 0.0)
        return per_anchor.sum(-1) / has_pos.sum(-1).clamp_min(1)


def redundancy(h: torch.Tensor, r: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Eq. 13: ||1/M sum_i h~_i r~_i^T||_F^2 on batch-standardised streams, divided by the width E
    (a departure: keeps gamma's scale independent of the model width).

    h, r: (..., M, E) (leading dims: several layers' streams, each its own term, as in `supervised_info_nce`).
    mu and sigma are the batch mean and (population) standard deviation per dimension, sigma + eps in the
    denominator; M counts the samples where both streams are not all zeros (module docstring), and fewer than two
    give 0 (a single sample standardises to zero)."""
    with full_precision(h.device.type):
        w = (present(h) & present(r)).float()[..., None]
        n = w.sum(-2, keepdim=True).clamp_min(1)
        h, r = standardised(h.float(), w, n, eps), standardised(r.float(), w, n, eps)
        cross = h.transpose(-1, -2) @ r / n
        return cross.pow(2).sum((-1, -2)) / h.shape[-1]


def standardised(x: torch.Tensor, w: torch.Tensor, n: torch.Tensor, eps: float) -> torch.Tensor:
    """(x - mu) / (sigma + eps) over the n rows (dim -2) where w (..., M, 1) is 1, zero on the other rows."""
    mean = (w * x).sum(-2, keepdim=True) / n
    centred = w * (x - mean)
    var = centred.pow(2).sum(-2, keepdim=True) / n
    spread = var > 0  # the sqrt's gradient is infinite at 0; torch.std's is 0 there, and so is this one's
    return centred / (torch.where(spread, torch.where(spread, var, 1.0).sqrt(), 0.0) + eps)


@dataclass
class LossWeights:
    """Eq. 14 weights: L = task + beta (NCE_h + NCE_r) + gamma red + mi_hash * MI-hash.

    The MI-hash term is a departure from Eq. 14, which leaves it out: §4.1.2 says the hash head is optimised with
    Eq. 8 but gives it no weight, so it is added to the total with its own (0.01, the project's choice). Table 5's
    "w/o MI loss (beta = gamma = 0)" therefore keeps it (configs/ablations/no_mi.yaml); mi_hash = 0 drops it too.
    Each weight scales exactly the terms it names; a term with weight 0 is still computed and logged.

    Args:
        beta: InfoNCE weight (Eq. 12, on both streams), >= 0.
        gamma: redundancy weight (Eq. 13), >= 0.
        mi_hash: MI-hash weight (Eq. 8), >= 0.
        tau_nce: Eq. 12 temperature, > 0.
        use_nce: False for tasks without a class label (CTC): the InfoNCE terms are off.
    """
    beta: float = 0.1
    gamma: float = 0.01
    mi_hash: float = 0.01
    tau_nce: float = 0.1
    use_nce: bool = True

    def __post_init__(self) -> None:
        for name in ("beta", "gamma", "mi_hash"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"loss.{name} must be a weight >= 0, got {getattr(self, name)!r}")
        if not self.tau_nce > 0:
            raise ValueError(f"loss.tau_nce must be a temperature > 0, got {self.tau_nce!r}")


def auxiliary_losses(aux: list[MixerAux], labels: torch.Tensor | None,
                     weights: LossWeights) -> dict[str, torch.Tensor]:
    """Eq. 12, 13 and 8 averaged over the layers that provide the streams; keys absent when no layer does.

    Each term runs once for all the layers whose streams have the same shapes (`stacked_streams`), on their streams
    stacked: as many launches at any depth, where the terms run a layer at a time took some 200 small kernels a
    layer (`benchmarks/op_count.py --aux-loss`)."""
    nce = weights.use_nce and labels is not None and labels.dim() == 1
    parts: dict[str, list[torch.Tensor]] = {"nce_h": [], "nce_r": [], "red": [], "mi_hash": []}
    for h, r in stacked_streams(aux):
        if nce and h is not None:
            parts["nce_h"].append(supervised_info_nce(h, labels, weights.tau_nce))
        if nce and r is not None:
            parts["nce_r"].append(supervised_info_nce(r, labels, weights.tau_nce))
        if h is not None and r is not None and h.shape[-2] > 1:
            parts["red"].append(redundancy(h, r))
    hashes = [layer.mi_hash for layer in aux if layer.mi_hash is not None]
    parts["mi_hash"] = [torch.stack(hashes)] if hashes else []
    return {k: torch.cat(v).mean() for k, v in parts.items() if v}


def stacked_streams(aux: list[MixerAux]) -> list[tuple[torch.Tensor | None, torch.Tensor | None]]:
    """(h, r): the pooled streams (layers, M, E) of each group of layers whose h and r have the same shapes and dtypes,
    stacked; None for a stream the group's layers do not report (a layer that reports neither is left out)."""
    groups: dict[tuple, list[tuple]] = {}
    for layer in aux:
        streams = (layer.h_pool, layer.r_pool)
        if any(t is not None for t in streams):
            key = tuple(None if t is None else (t.shape, t.dtype) for t in streams)
            groups.setdefault(key, []).append(streams)

    def stack(tensors):
        return None if tensors[0] is None else torch.stack(tensors)

    return [(stack([h for h, _ in layers]), stack([r for _, r in layers])) for layers in groups.values()]


def weighted_terms(parts: dict[str, torch.Tensor], weights: LossWeights) -> dict[str, torch.Tensor]:
    """Eq. 14's summands: parts['task'] as it is, and those of 'nce_h', 'nce_r', 'red', 'mi_hash' that `parts`
    holds times their weights (other keys, such as 'loss', left out)."""
    scale = {"nce_h": weights.beta, "nce_r": weights.beta, "red": weights.gamma, "mi_hash": weights.mi_hash}
    return {"task": parts["task"], **{name: scale[name] * value for name, value in parts.items() if name in scale}}


def total_loss(task: torch.Tensor, aux: list[MixerAux], labels: torch.Tensor | None,
               weights: LossWeights) -> dict[str, torch.Tensor]:
    """Eq. 14. Returns every part (for logging) and 'loss', the sum of `weighted_terms`, which is optimised."""
    parts = {"task": task, **auxiliary_losses(aux, labels, weights)}
    return {**parts, "loss": sum(weighted_terms(parts, weights).values())}
