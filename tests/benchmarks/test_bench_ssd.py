"""benchmarks/bench_ssd.py: its Mamba-1 rendering of an SSD problem is that problem, and its config parsing."""
import pytest
import torch

from infomamba.ops.selective_scan import selective_scan_reference
from infomamba.ops.ssd_scan import ssd_scan_reference

from benchmark_scripts import load

bench_ssd = load("bench_ssd")


def test_the_mamba1_row_scans_the_same_problem():
    """dt and A repeated over each head's channels make the Mamba-1 scan compute the SSD scan, so the bench's rows
    time one problem (a wrong repeat order would mix heads)."""
    x, dt, A, B, C, D = bench_ssd.inputs(2, 40, 3, 4, 5, torch.float32, "cpu")
    u, delta, A1 = bench_ssd.as_mamba1(x, dt, A, 5)
    want = ssd_scan_reference(x, dt, A, B, C, D, chunk=16).flatten(2)
    torch.testing.assert_close(selective_scan_reference(u, delta, A1, B, C, D), want, rtol=1e-4, atol=1e-4)


def test_config_parsing():
    assert bench_ssd.parse_config("32,4,2/8,1") == ((32, 4, 2), (8, 1))
    with pytest.raises(ValueError, match="BLOCK_P,WARPS,STAGES/WARPS,STAGES"):
        bench_ssd.parse_config("32,4/8,1")
