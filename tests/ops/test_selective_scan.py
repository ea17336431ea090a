import os
import subprocess
import sys

import pytest
import torch

from infomamba.ops.selective_scan import selective_scan, selective_scan_reference, selective_scan_sequential


def inputs(b=2, L=37, d=6, n=4, dtype=torch.float32):
    u = torch.randn(b, L, d, dtype=dtype)
    dt = torch.rand(b, L, d, dtype=dtype) * 0.5
    A = -torch.rand(d, n) * 4 - 0.1
    B = torch.randn(b, L, n, dtype=dtype)
    C = torch.randn(b, L, n, dtype=dtype)
    D = torch.randn(d)
    return u, dt, A, B, C, D


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("chunk", [1, 8, 64])
def test_reference_matches_sequential_definition(reverse, chunk):
    args = inputs()
    ref = selective_scan_reference(*args, reverse=reverse, chunk=chunk)
    seq = selective_scan_sequential(*args, reverse=reverse)
    torch.testing.assert_close(ref, seq, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("reverse", [False, True])
def test_reference_gradients_match_sequential(reverse):
    args = [a.clone().requires_grad_() for a in inputs(L=21)]
    g = torch.randn(2, 21, 6)
    (selective_scan_reference(*args, reverse=reverse, chunk=8) * g).sum().backward()
    grads = [a.grad.clone() for a in args]
    for a in args:
        a.grad = None
    (selective_scan_sequential(*args, reverse=reverse) * g).sum().backward()
    for got, want in zip(grads, [a.grad for a in args]):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("reverse", [False, True])
def test_zero_dt_and_u_positions_are_skipped(reverse):
    """Padding contract: positions with dt = u = 0 leave the state untouched in both directions."""
    u, dt, A, B, C, D = inputs(b=1, L=20)
    alone = selective_scan_reference(u[:, :13], dt[:, :13], A, B[:, :13], C[:, :13], D, reverse=reverse)
    u2, dt2, B2, C2 = u.clone(), dt.clone(), B.clone(), C.clone()
    u2[:, 13:] = 0
    dt2[:, 13:] = 0
    B2[:, 13:] = torch.randn_like(B2[:, 13:]) * 100
    padded = selective_scan_reference(u2, dt2, A, B2, C2, D, reverse=reverse)
    torch.testing.assert_close(padded[:, :13], alone, atol=1e-5, rtol=1e-5)


def test_dtype_preserved_and_state_in_fp32():
    args = list(inputs(dtype=torch.bfloat16))
    y = selective_scan(*args)
    assert y.dtype == torch.bfloat16
    ref = selective_scan_sequential(*[a.float() for a in args])
    torch.testing.assert_close(y.float(), ref, atol=0.1, rtol=0.05)


_KEPT_FOR_BACKWARD = """
import os, sys, torch
from torch.utils.checkpoint import checkpoint
from infomamba.ops.selective_scan import selective_scan_reference
checkpoint(lambda t: t * 2, torch.ones(2, requires_grad=True), use_reentrant=False).sum().backward()  # its imports
b, L, d, n = 4, 1024, 256, 16
args = [torch.randn(b, L, d), torch.rand(b, L, d) * 0.5, -torch.rand(d, n) * 4 - 0.1, torch.randn(b, L, n),
        torch.randn(b, L, n), torch.randn(d)]
args = [a.requires_grad_() for a in args]
resident = lambda: int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
before = resident()
y = selective_scan_reference(*args)
print((resident() - before) / (b * L * d * n * 4))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_reference_keeps_less_than_one_state_tensor_for_backward():
    """Training the CPU path keeps what the chunks need to recompute, not their (batch, L, d, n) fp32 decays, inputs and
    states (three such tensors until chunks ran under checkpointing; a Fashion-MNIST recipe on a 24 GB CPU machine ran
    out of memory). Measured as resident memory after the forward in a fresh process whose allocations above 64 KB are
    mmapped, so that freed temporaries leave the count."""
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", _KEPT_FOR_BACKWARD], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert float(out.split()[-1]) < 0.5
