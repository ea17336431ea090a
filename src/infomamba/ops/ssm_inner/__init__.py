"""The selective-SSM inner path (conv + SiLU -> x_proj -> dt/B/C -> scan), dispatched: one fused,
recomputing custom op (`triton.py`) where the Triton kernels run, the PyTorch reference
(`reference.py`) elsewhere."""
from __future__ import annotations

from ..dispatch import kernel_for, optional_import
from .reference import ssm_inner_reference

_triton = optional_import(__name__ + ".triton")

__all__ = ["ssm_inner", "ssm_inner_reference"]


def ssm_inner(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse):
    """Readout r (B, L, E) of the inner path; arguments as `reference.ssm_inner_reference`."""
    kernel = kernel_for(_triton and _triton.ssm_inner_triton, "ssm_inner",
                        "selective SSM (conv, projections, scan)", x.is_cuda)
    fn = kernel if kernel is not None else ssm_inner_reference
    return fn(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse)
