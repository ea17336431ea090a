"""The selective-SSM inner path (conv + SiLU -> x_proj -> dt/B/C -> scan), dispatched: one fused,
recomputing custom op (`triton.py`) where the Triton kernels run, the PyTorch reference
(`reference.py`) elsewhere; `ssm_inner_pair` runs a bidirectional mixer's two directions as one op. Mamba-1
(per-channel dt and A) or SSD form (dt and A shared within a head), told apart by A_log's rank (`reference.py`)."""
from __future__ import annotations

from ..dispatch import announce, kernel_for, optional_import
from ..ssd_scan import kernel_widths_fit
from .reference import ssm_inner_pair_reference, ssm_inner_reference, state_size

_triton = optional_import(__name__ + ".triton")

__all__ = ["ssm_inner", "ssm_inner_pair", "ssm_inner_pair_reference", "ssm_inner_reference"]


def _kernel(kernel, x, x_proj_w, dt_proj_w, A_log):
    """`kernel` where the Triton kernels run and take this form's widths, else None (the reference)."""
    kernel = kernel_for(kernel, "ssm_inner", "selective SSM (conv, projections, scan)", x.is_cuda)
    if kernel is not None and A_log.dim() == 1 and not _ssd_widths_fit(x.shape[-1] // A_log.shape[0],
                                                                       state_size(x_proj_w, dt_proj_w)):
        return None
    return kernel


def ssm_inner(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse):
    """Readout r (B, L, E) of the inner path, either form; arguments as `reference.ssm_inner_reference`."""
    kernel = _kernel(_triton and _triton.ssm_inner_triton, x, x_proj_w, dt_proj_w, A_log)
    fn = kernel if kernel is not None else ssm_inner_reference
    return fn(x, conv_w, conv_b, h, p, x_proj_w, dt_proj_w, dt_proj_b, A_log, D, padding_mask, reverse)


def ssm_inner_pair(x, h, p, padding_mask, forward, reverse):
    """The summed readouts of a forward and a reverse scan over the same x, h, p, as one op; arguments as
    `reference.ssm_inner_pair_reference` (the two directions in one form)."""
    _, _, x_proj_w, dt_proj_w, _, A_log, _ = forward
    kernel = _kernel(_triton and _triton.ssm_inner_pair_triton, x, x_proj_w, dt_proj_w, A_log)
    fn = kernel if kernel is not None else ssm_inner_pair_reference
    return fn(x, h, p, padding_mask, forward, reverse)


def _ssd_widths_fit(p: int, n: int) -> bool:
    """Whether the Triton SSD kernels take p channels a head and n states (powers of two >= 16); says once when not
    (small test-sized models then run the reference, announced, not an error)."""
    fits = kernel_widths_fit(p, n)
    if not fits:
        announce("selective SSM (conv, projections, scan)", f"PyTorch reference for the SSD form with {p} channels a "
                 f"head and {n} states (its Triton kernels take powers of two >= 16)")
    return fits
