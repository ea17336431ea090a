"""benchmarks/ssd_rounding.py: its emulated chunk walk is the SSD scan when nothing is rounded, in either product
order; rounding late errs less than rounding early; with fp16 casts the late walk is the kernel's forward."""
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


@pytest.mark.skipif(torch.cuda.is_available(), reason="the interpreter's fp16 products, exact and rounded once, are "
                    "what the emulation models; a GPU's tensor cores accumulate in an order of their own")
def test_late_walk_is_the_kernels_forward():
    """In fp16 under Triton's interpreter the kernel's y is the late walk's, element for element, all but a few one
    fp16 step apart (fp32 accumulation against fp64), and the early walk's on about half the elements only: the
    emulation models the kernel that its figures are cited for."""
    ssd = pytest.importorskip("infomamba.ops.ssd_scan.triton")
    x, dt, A, B, C, D = ssd_rounding.inputs(2, 512, 2, 32, 16, torch.float16, "cpu")
    kernel = ssd.ssd_scan_triton(x, dt, A, B, C, D).double()
    chunk = ssd.y_chunk(2 * 2, None)

    def same(order):
        walk = ssd_rounding.chunked_forward(x, dt, A, B, C, D, chunk, order, rnd=lambda t: t.half().double())
        return (walk == kernel).double().mean().item()

    assert same("late") > 0.99 and same("early") < 0.9, (same("late"), same("early"))
