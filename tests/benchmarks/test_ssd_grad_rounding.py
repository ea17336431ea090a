"""benchmarks/ssd_grad_rounding.py: its ratios measure error beyond one rounding of the exact gradients."""
import pytest
import torch

from infomamba.ops.ssd_scan import ssd_scan_reference

from benchmark_scripts import load

pytest.importorskip("triton")
load("bench_ssd")
grad_rounding = load("ssd_grad_rounding")


def test_a_backward_that_rounds_the_exact_gradients_once_scores_one(monkeypatch):
    """The exact scan in fp64 behind a cast to fp16: autograd rounds each exact gradient once to its input's dtype, so
    the fp16 gradients score 1.0 and the fp32 ones err at fp32's rounding; an off-by-one floor (rounding to bf16, or
    the error over itself) would not give 1.0."""
    monkeypatch.setattr(grad_rounding, "ssd_scan_triton",
                        lambda *args: ssd_scan_reference(*(t.double() for t in args)).to(args[0].dtype))
    e = grad_rounding.gradient_errors(2, 24, 2, 16, 16, torch.float16, "cpu")
    for name in "xBC":
        assert e[name][0] == pytest.approx(1.0, abs=1e-9), (name, e[name])
    for name in ("dt", "A", "D"):
        assert e[name][0] is None and e[name][1] < 1e-6, (name, e[name])


def test_bf16_off_a_gpu_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="float16 under TRITON_INTERPRET=1"):
        grad_rounding.main(["--dtype", "bfloat16", "--shapes", "1x16"])
