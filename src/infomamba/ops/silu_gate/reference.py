"""The SiLU gate of the SSM mixers' output, g = y * SiLU(z) (Mamba's gate, Vim Algorithm 1; the last line of
InfoMamba's block), and its backward, in PyTorch: the CPU path and the Triton kernels' oracle.

With s = sigmoid(z) and dg the gradient of g:

    g  = y z s          dy = dg z s          dz = dg y s (1 + z (1 - s))

The backward's elementwise work runs in fp32 (or wider) and returns each result in its own dtype."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def silu_gate_reference(y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """g = y * SiLU(z), in the promoted dtype of y and z."""
    return y * F.silu(z)


def silu_gate_backward_reference(y: torch.Tensor, z: torch.Tensor, dg: torch.Tensor, g_dtype: torch.dtype
                                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(g recomputed in g_dtype, dy in y's dtype, dz in z's dtype) for the gradient dg of g."""
    acc = torch.promote_types(torch.promote_types(y.dtype, z.dtype), torch.float32)
    zf, yf, dgf = z.to(acc), y.to(acc), dg.to(acc)
    s = torch.sigmoid(zf)
    silu = zf * s
    return ((yf * silu).to(g_dtype), (dgf * silu).to(y.dtype),
            (dgf * yf * s * (1 + zf * (1 - s))).to(z.dtype))
