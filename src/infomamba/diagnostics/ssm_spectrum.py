"""Spectral radius of the discretised SSM transitions over data (paper §3.2 H2, §5.5).

H2 asks for a stable, short-memory diagonal transition, max_i |λ_i| <= r < 1 (Eq. 4); §5.5 reads the
outside-regime control by the spectral radius ρ(Λ) of the recurrence. In the project's selective SSM
(`infomamba.layers.ssm.SelectiveSSM`, Mamba-1 form) the transition of channel d at token t is the
diagonal matrix exp(dt_t[d] A[d, :]), so its spectral radius is

    ρ_t[d] = max_n exp(dt_t[d] A[d, n]) = exp(dt_t[d] max_n A[d, n])      (dt >= 0)

with A = -exp(A_log) < 0, hence ρ < 1 by construction wherever dt > 0: what the data decide is how
close to 1 it comes (how long the memory is: a ρ of 1 - 1/T keeps a token for about T steps). In the SSD
form (`heads` set) dt and A are one scalar a head, ρ_t[h] = exp(dt_t[h] A[h]), and a record's `channels`
counts heads. The hook recomputes dt from the module's own parameters and input, with the helpers of the
inner path's reference (`infomamba.ops.ssm_inner.reference`):

    u = SiLU(conv(x~)) + P h (masked),  dt = softplus(dt_proj(x_proj(u)[..., :dt_rank]))

Only real tokens count (padded tokens get dt = 0, i.e. ρ = 1, and are skipped by the scan). The max is
exact over everything seen; the quantiles come from a uniform random subsample of at most `max_values`
(token, channel) pairs per forward (fixed seed), pooled over the batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from ..layers.ssm import SelectiveSSM
from ..ops.ssm_inner.reference import keep_mask, projections, scan_input, state_matrix, step_size
from .hooks import HookRecorder, layer_index

QUANTILES = (0.5, 0.9, 0.99, 0.999)


def step_sizes(ssm: SelectiveSSM, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
               h: torch.Tensor | None = None, p: torch.Tensor | None = None) -> torch.Tensor:
    """dt (B, L, E), or (B, L, H) in the SSD form, in fp32 that `ssm` uses on its forward's arguments (0 at
    padding), as its inner path computes it (x the scanned stream; h, p InfoMamba's injection P h, P = diag(p))."""
    keep = keep_mask(padding_mask, x)
    conv_w, conv_b = (ssm.conv.weight[:, 0], ssm.conv.bias) if ssm.conv is not None else (None, None)
    _, u = scan_input(x, conv_w, conv_b, h, p, keep, ssm.reverse)
    _, _, _, dt_pre = projections(u, ssm.x_proj.weight, ssm.dt_proj.weight, ssm.dt_proj.bias, ssm.d_state)
    return step_size(dt_pre, keep)


def spectral_radius(ssm: SelectiveSSM, dt: torch.Tensor) -> torch.Tensor:
    """ρ (..., E) = max_n exp(dt A[:, n]) of the transitions for step sizes dt (..., E); in the SSD form
    ρ (..., H) = exp(dt A) for dt (..., H) and A (H,)."""
    A = state_matrix(ssm.A_log)
    return torch.exp(dt * (A if A.dim() == 1 else A.max(-1).values))


@dataclass
class SSMRecord:
    """What one SSM direction saw: the exact max of ρ, and a subsample of ρ for its quantiles."""
    name: str
    index: int | None
    reverse: bool
    channels: int
    count: int = 0
    maximum: float = float("-inf")
    samples: list[torch.Tensor] = field(default_factory=list)

    def summary(self, quantiles: tuple[float, ...] = QUANTILES) -> dict:
        values = torch.cat(self.samples).double().numpy() if self.samples else np.zeros(0)
        out = {"layer": self.name, "index": self.index, "reverse": self.reverse, "channels": self.channels,
               "values": self.count, "rho_max": self.maximum if self.count else float("nan"),
               "rho_mean": float(values.mean()) if values.size else float("nan"),
               "rho_quantiles": {str(q): float(np.quantile(values, q)) if values.size else float("nan")
                                 for q in quantiles}}
        # steps for the slowest mode to decay by half at the median / max radius
        out["half_life_median"] = _half_life(out["rho_quantiles"].get("0.5", float("nan")))
        out["half_life_max"] = _half_life(out["rho_max"])
        return out


def _half_life(rho: float) -> float:
    if not np.isfinite(rho) or rho <= 0:
        return float("nan")
    return float("inf") if rho >= 1 else float(np.log(0.5) / np.log(rho))


class SSMSpectrumRecorder(HookRecorder):
    """Context manager: hooks every `SelectiveSSM` of `model` and records ρ over the data.

    Args:
        model: any module (a task module, an `Encoder`).
        max_values: (token, channel) pairs kept per forward for the quantiles (the max is exact).
        seed: of the subsample.
    """

    kind = SelectiveSSM

    def __init__(self, model: nn.Module, max_values: int = 100_000, seed: int = 0):
        super().__init__(model)
        self.max_values = max_values
        self.records = {name: SSMRecord(name, layer_index(name), m.reverse, m.A_log.shape[0])
                        for name, m in self.layers.items()}
        self.generator = torch.Generator().manual_seed(seed)

    def register(self, name: str, layer: SelectiveSSM):
        def hook(layer: SelectiveSSM, args, kwargs) -> None:
            names = ("x", "padding_mask", "h", "p")  # SelectiveSSM.forward's arguments
            values = dict(zip(names, args)) | {k: v for k, v in kwargs.items() if k in names}
            with torch.no_grad():
                self.observe(name, layer, values["x"], values.get("padding_mask"), values.get("h"), values.get("p"))
        return layer.register_forward_pre_hook(hook, with_kwargs=True)

    def observe(self, name: str, layer: SelectiveSSM, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
                h: torch.Tensor | None = None, p: torch.Tensor | None = None) -> None:
        """Record one forward of `layer` (what the hook calls)."""
        rho = spectral_radius(layer, step_sizes(layer, x, padding_mask, h, p))          # (B, L, E)
        real = rho if padding_mask is None else rho[~padding_mask]
        real = real.reshape(-1)
        if real.numel() == 0:
            return
        record = self.records[name]
        record.count += real.numel()
        record.maximum = max(record.maximum, float(real.max()))
        if real.numel() > self.max_values:
            picks = torch.randperm(real.numel(), generator=self.generator)[: self.max_values].to(real.device)
            real = real[picks]
        record.samples.append(real.float().cpu())
