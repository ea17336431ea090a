"""InfoMamba's training objective (§4.1.2, §4.2.2-4.2.3): Eq. 8, 12, 13, 14."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .mixers import MixerAux

_EXCLUDED = -1e4  # the logit of a pair Eq. 12 leaves out (|sim| / tau <= 1 / tau)


def supervised_info_nce(z: torch.Tensor, labels: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Eq. 12: -1/M sum_i log( sum_{p in P(i)} e^{sim(i,p)/tau} / sum_{a != i} e^{sim(i,a)/tau} ).

    z: (M, E) pooled stream; labels: (M,). Anchors with no positive in the batch are skipped; a
    batch with none returns 0 (still attached to the graph). No host synchronisation: excluded pairs
    get a logit of -1e4 (exp underflows to exactly 0 in fp32, as -inf would, but rows with nothing left
    stay finite, so masking them out passes no NaN to the gradient).
    """
    z = F.normalize(z.float(), dim=-1)
    sim = z @ z.t() / tau
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, _EXCLUDED)
    positives = (labels[:, None] == labels[None, :]) & ~eye
    has_pos = positives.any(1)
    log_num = torch.logsumexp(sim.masked_fill(~positives, _EXCLUDED), dim=1)
    log_den = torch.logsumexp(sim, dim=1)
    per_anchor = torch.where(has_pos, log_den - log_num, 0.0)
    return per_anchor.sum() / has_pos.sum().clamp_min(1)


def redundancy(h: torch.Tensor, r: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Eq. 13: ||1/M sum_i h~_i r~_i^T||_F^2 on batch-standardised streams, divided by the width E
    (a departure: keeps gamma's scale independent of the model width)."""
    h, r = h.float(), r.float()
    h = (h - h.mean(0)) / (h.std(0, unbiased=False) + eps)
    r = (r - r.mean(0)) / (r.std(0, unbiased=False) + eps)
    cross = h.t() @ r / h.shape[0]
    return cross.pow(2).sum() / h.shape[1]


@dataclass
class LossWeights:
    """Eq. 14 weights: L = task + beta (NCE_h + NCE_r) + gamma red + mi_hash * MI-hash.

    Args:
        beta: InfoNCE weight (Eq. 12, on both streams).
        gamma: redundancy weight (Eq. 13).
        mi_hash: MI-hash weight (Eq. 8).
        tau_nce: Eq. 12 temperature.
        use_nce: False for tasks without a class label (CTC): the InfoNCE terms are off.
    """
    beta: float = 0.1
    gamma: float = 0.01
    mi_hash: float = 0.01
    tau_nce: float = 0.1
    use_nce: bool = True


def auxiliary_losses(aux: list[MixerAux], labels: torch.Tensor | None,
                     weights: LossWeights) -> dict[str, torch.Tensor]:
    """Eq. 12, 13 and 8 averaged over the layers that provide the streams; keys absent when no layer does."""
    parts: dict[str, list[torch.Tensor]] = {"nce_h": [], "nce_r": [], "red": [], "mi_hash": []}
    for layer in aux:
        h, r = layer.h_pool, layer.r_pool
        if weights.use_nce and labels is not None and labels.dim() == 1:
            if h is not None:
                parts["nce_h"].append(supervised_info_nce(h, labels, weights.tau_nce))
            if r is not None:
                parts["nce_r"].append(supervised_info_nce(r, labels, weights.tau_nce))
        if h is not None and r is not None and h.shape[0] > 1:
            parts["red"].append(redundancy(h, r))
        if layer.mi_hash is not None:
            parts["mi_hash"].append(layer.mi_hash)
    return {k: torch.stack(v).mean() for k, v in parts.items() if v}


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
