"""benchmarks/ssd_rounding.py: its emulated chunk walk is the SSD scan when nothing is rounded, in either product
order, and rounding late errs less than rounding early."""
import pytest
import torch

from infomamba.ops.ssd_scan import ssd_scan_reference

from benchmark_scripts import load

load("bench_ssd")
ssd_rounding = load("ssd_rounding")


@pytest.mark.parametrize("order", ssd_rounding.ORDERS)
def test_unrounded_walk_is_the_scan(order):
    """Without rounding, each order's chunk walk (a partial last chunk, three chunks) computes the scan (the fp32
    reference's accuracy): dt and exp(cs) moved between the factors of a product must not change y."""
    x, dt, A, B, C, D = (t.double() for t in ssd_rounding.inputs(2, 37, 3, 64, 16, torch.float64, "cpu"))
    got = ssd_rounding.chunked_forward(x, dt, A, B, C, D, 16, order, rnd=lambda t: t)
    torch.testing.assert_close(got, ssd_scan_reference(x, dt, A, B, C, D), rtol=1e-5, atol=1e-5)


def test_rounding_late_errs_less_than_early():
    e = ssd_rounding.errors(length=128, heads=2, chunk=32)
    assert e["floor"] < e["late"] < e["early"], e
