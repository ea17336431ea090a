"""InfoMamba mixer: concept-bottleneck filter (Eq. 7-10) fused into a selective scan by IMF (Eq. 11).

    x, z = in_proj(x_in)                        (x: scanned stream, z: gate; inner width E = expand * D)
    h_t  = ConceptFilter(x_in)_t                (Eq. 7-10, h in R^E)
    s_t  = exp(dt_t A) s_{t-1} + dt_t B_t u_t,  u_t = SiLU(conv(x))_t + P h_t     (Eq. 11, state)
    y_t  = C_t s_t + D u_t + F h_t                                                  (Eq. 11, readout)
    out  = out_proj(y * SiLU(z))

F h, its add and the gate run as one kernel (`layers/gate.py`'s `gated_readout`, which also returns r_pool, whose
gradient its backward kernel adds into r's); h_pool, h's mean for Eq. 12-13, is formed from the concepts
(`layers/concepts.py`'s `readout`), not from h. h is not kept for backward:
the SSM op (for P's gradient and the recomputed input u) and the gated readout (for F's gradient) save it as its
recipe (`layers/recompute.py`), Eq. 10's last matmul over tensors that its own backward keeps: one
(B, L, k) x (B, k, E) matmul in backward instead of a (B, L, E) tensor a layer until then.

IMF reading (DESIGN.md): P h_t enters through the selective input map, so it reaches the state as
dt_t B_t P h_t and one scan kernel serves both paths. P and F are diagonal (per-channel vectors):
W_U (Eq. 10) is already a full learned map into R^E right before them, so full P, F matrices would
mostly re-parameterise it at 2 E^2 extra parameters.

Bidirectional mode runs a forward and a reverse scan (separate parameters, as Vim) on the same
u and sums their readouts (one op, `layers/ssm.py`'s `SSMDirections`); causal mode runs the forward scan and the
chunk-causal filter.

Table 5 variants (`variant=`): `full`; `no_imf` y = r + h (no injection, no F); `no_ssm` y = F h (no P: no state);
`no_filter` h = 0 (a plain selective SSM); `no_filter_no_ssm` the mixer outputs 0 (block = MLP only);
`static_rr` input-agnostic R_0; `no_mix` Psi = I.

Training mode samples each token's hash bucket (Eq. 8, straight-through Gumbel-softmax; DESIGN.md), so two
training-mode forwards of one input differ even without dropout; eval mode takes the argmax and is deterministic.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from ..layers.concepts import ConceptFilter
from ..layers.gate import gated_projection, gated_readout
from ..layers.pooling import masked_mean
from ..layers.recompute import saved_as_recipe
from ..layers.split_projection import split_projection
from ..layers.ssm import dt_rank_auto, ssm_directions
from . import Mixer, MixerAux, register_mixer, training_terms

VARIANTS = ("full", "no_imf", "no_ssm", "no_filter", "no_filter_no_ssm", "static_rr", "no_mix")


@register_mixer("infomamba")
class InfoMambaMixer(Mixer):
    """InfoMamba token mixer (linear time: no L x L tensor in any path).

    Args:
        dim: token width D.  causal: every path causal (scan forward only, chunk-causal filter).
        variant: one of VARIANTS (Table 5).  expand: E = expand * D.  d_state, d_conv: SSM.
        dt_rank: rank of dt (default `dt_rank_auto(D)`, Mamba's "auto" ceil(D / 16)).
        ssm_heads: SSD (Mamba-2) form: dt and A shared within each of ssm_heads heads (must divide E);
            None: Mamba-1 per-channel form (`layers/ssm.py`).
        k_max, d_concept, tau_assign, n_buckets, tau_hash, q_max: the concept filter (§4.1, §5.3).
        chunk: causal filter chunk size (unused bidirectional, where it may be None).
        static_len: R_0 rows for `static_rr`.
        fusion_init: initial value of the diagonal P and F (LayerScale-style; P h is formed inside the SSM op
            and F h inside the gate's kernel, so neither is a (B, L, E) tensor of its own). Measured on
            Fashion-MNIST (H100, 4 epochs, docs/results.md): with P = F = 1 at init the filter path (whose
            hard Gumbel bucketing is noisy early in training) dragged the fused model far below the plain
            selective SSM; a small start lets the model open the global path as it learns.
    """

    causal_capable = True
    linear_time = True

    def __init__(self, dim: int, *, causal: bool = False, layer_idx: int = 0, depth: int = 1,
                 variant: str = "full", expand: float = 2, d_state: int = 16, d_conv: int = 4,
                 dt_rank: int | None = None, ssm_heads: int | None = None, k_max: int = 100,
                 d_concept: int = 64, tau_assign: float = 0.7, n_buckets: int = 16, tau_hash: float = 0.1,
                 q_max: int = 8, chunk: int | None = 64, static_len: int = 4096, fusion_init: float = 0.1):
        super().__init__()
        self.causal = causal
        if variant not in VARIANTS:
            raise ValueError(f"infomamba variant must be one of {VARIANTS}, got {variant!r}")
        if causal and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            raise ValueError(f"causal infomamba needs chunk, an int >= 1 (the chunk-causal filter's chunk), got "
                             f"{chunk!r}: without chunks the concept filter pools the whole sequence, the future too")
        self.variant = variant
        self.has_ssm = variant not in ("no_ssm", "no_filter_no_ssm")
        self.has_filter = variant not in ("no_filter", "no_filter_no_ssm")
        self.fused = variant not in ("no_imf",)
        if variant == "no_filter_no_ssm":
            return
        inner = int(expand * dim)
        self.in_proj = nn.Linear(dim, inner * (2 if self.has_ssm else 1), bias=False)
        self.out_proj = nn.Linear(inner, dim, bias=False)
        if self.has_ssm:
            self.ssm = ssm_directions(inner, causal, d_state=d_state, d_conv=d_conv, heads=ssm_heads,
                                      dt_rank=dt_rank_auto(dim) if dt_rank is None else dt_rank)
        if self.has_filter:
            self.filter = ConceptFilter(
                dim, inner, k_max=k_max, d_concept=d_concept, tau_assign=tau_assign, n_buckets=n_buckets,
                tau_hash=tau_hash, q_max=q_max, chunk=chunk if causal else None, mix=variant != "no_mix",
                static_len=static_len if variant == "static_rr" else None)
            if self.fused and self.has_ssm:
                self.p = nn.Parameter(torch.full((inner,), float(fusion_init)))
            if self.fused:
                self.f = nn.Parameter(torch.full((inner,), float(fusion_init)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.variant == "no_ssm":
            state_dict.pop(prefix + "p", None)  # written before no_ssm dropped P, which had no path to the output
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None, grid=None):
        aux = MixerAux()
        if self.variant == "no_filter_no_ssm":
            return torch.zeros_like(x), aux
        if self.has_ssm:
            xs, z = split_projection(x, self.in_proj.weight, 2)
        else:
            z = self.in_proj(x)
        h, recipe = None, None
        terms = training_terms()
        if self.has_filter:
            Z_mixed, readback, filter_aux = self.filter.mixed_concepts(x, padding_mask, terms)
            h, recipe, aux.h_pool = self.filter.token_stream(Z_mixed, readback, padding_mask, terms)
            aux.mi_hash, aux.k_eff = filter_aux.get("mi_hash"), filter_aux.get("k_eff")
        with saved_as_recipe(h, recipe):
            if not self.has_ssm:
                return gated_projection(self.f.to(h.dtype) * h, z, self.out_proj.weight), aux
            h_in, p_in = (h, self.p) if (h is not None and self.fused) else (None, None)
            r = self.ssm(xs, padding_mask, h_in, p_in)
            if h is not None and self.fused:
                out, aux.r_pool = gated_readout(r, h, self.f, z, self.out_proj.weight, padding_mask, terms)
                return out, aux
            aux.r_pool = masked_mean(r, padding_mask) if terms else None
            return gated_projection(r if h is None else r + h, z, self.out_proj.weight), aux
