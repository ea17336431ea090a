"""benchmarks/bench_ssd.py: its Mamba-1 rendering of an SSD problem is that problem, its config parsing, its
rounding-error ratio, and its loading of mamba-ssm's SSD kernels."""
import sys

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


def test_mamba_ssm_loads_without_its_package_inits(tmp_path):
    """A clone of state-spaces/mamba has no built CUDA extensions, which its top package's `__init__` imports: the
    loader reaches the SSD kernels' module without running that file, and the adapter hands it mamba-ssm's layout
    (one B/C group, D a channel each, the chunk length)."""
    package = tmp_path / "mamba_ssm"
    (package / "ops" / "triton").mkdir(parents=True)
    (package / "utils").mkdir()
    (package / "__init__.py").write_text("import selective_scan_cuda\n")
    (package / "utils" / "shapes.py").write_text("def shapes(*ts):\n    return [tuple(t.shape) for t in ts]\n")
    (package / "ops" / "triton" / "ssd_combined.py").write_text(
        "from mamba_ssm.utils.shapes import shapes\n"
        "def mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size, D=None):\n"
        "    return shapes(x, dt, A, B, C, D), chunk_size\n")
    try:
        fn = bench_ssd.load_mamba_ssm(str(tmp_path))
        x, dt, A, B, C, D = bench_ssd.inputs(2, 8, 3, 4, 5, torch.float32, "cpu")
        assert bench_ssd.as_mamba_ssm(fn, 64)(x, dt, A, B, C, D) == (
            [(2, 8, 3, 4), (2, 8, 3), (3,), (2, 8, 1, 5), (2, 8, 1, 5), (3, 4)], 64)
    finally:
        for name in [m for m in sys.modules if m.partition(".")[0] == "mamba_ssm"]:
            del sys.modules[name]


def test_rounding_ratio_counts_error_beyond_one_rounding_of_the_exact_y():
    """y rounded once to bf16 reads 1.0; y with an error on top of that rounding reads more."""
    exact = torch.randn(4, 64, 32, dtype=torch.float64)
    once = exact.to(torch.bfloat16)
    assert bench_ssd.rounding_ratio(once, exact) == pytest.approx(1.0)
    twice = (once.double() + 0.01 * torch.randn_like(exact)).to(torch.bfloat16)
    assert bench_ssd.rounding_ratio(twice, exact) > 1.5
