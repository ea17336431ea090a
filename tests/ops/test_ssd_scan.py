"""SSD scan reference (ops/ssd_scan/reference.py): its chunked form is the Mamba-1 scan with dt and A shared within
each head, at any chunk length, in both directions, for lengths that are not a multiple of the chunk."""
import pytest
import torch
import torch.nn.functional as F

from infomamba.ops.ssd_scan import ssd_scan, ssd_scan_reference, ssd_scan_sequential


def make_inputs(batch=2, length=37, heads=3, p=4, n=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, length, heads, p, generator=g)
    dt = F.softplus(torch.randn(batch, length, heads, generator=g) - 1.0)
    A = -torch.exp(0.5 * torch.randn(heads, generator=g))
    B, C = torch.randn(batch, length, n, generator=g), torch.randn(batch, length, n, generator=g)
    return x, dt, A, B, C, torch.randn(heads * p, generator=g)


@pytest.mark.parametrize("chunk", [8, 16, 64])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("with_d", [True, False], ids=["D", "noD"])
def test_chunked_form_equals_the_definition(chunk, reverse, with_d):
    x, dt, A, B, C, D = make_inputs()
    D = D if with_d else None
    want = ssd_scan_sequential(x, dt, A, B, C, D, reverse=reverse)
    torch.testing.assert_close(ssd_scan_reference(x, dt, A, B, C, D, reverse, chunk), want, rtol=1e-4, atol=1e-5)


def test_states_cross_chunks():
    """Zero input after position 8 leaves y in later chunks a pure decay of the state entering them (a chunk form
    that dropped that state would give zeros there)."""
    x, dt, A, B, C, _ = make_inputs(batch=1, length=32)
    x[:, 8:] = 0
    want = ssd_scan_sequential(x, dt, A, B, C)
    assert want[:, 16:].abs().max() > 1e-3
    torch.testing.assert_close(ssd_scan_reference(x, dt, A, B, C, chunk=8), want, rtol=1e-4, atol=1e-6)


def test_dispatch_runs_the_reference_on_cpu():
    x, dt, A, B, C, D = make_inputs()
    torch.testing.assert_close(ssd_scan(x, dt, A, B, C, D), ssd_scan_reference(x, dt, A, B, C, D))
