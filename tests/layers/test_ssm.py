import pytest
import torch

from infomamba.layers.ssm import SelectiveSSM

ON_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if ON_CUDA else "cpu"


@pytest.mark.parametrize("reverse", [False, True])
def test_ssm_output_is_causal_in_its_direction(reverse):
    """A change at position t reaches only positions at or after t (forward), at or before t (reverse)."""
    ssm = SelectiveSSM(8, dt_rank=2, d_state=4, reverse=reverse)
    x = torch.randn(1, 12, 8)
    x2 = x.clone()
    x2[:, 6] += 1.0
    changed = (ssm(x) - ssm(x2)).abs().amax(-1)[0] > 0
    assert changed[6]
    assert not (changed[7:] if reverse else changed[:6]).any()
    assert (changed[:6] if reverse else changed[7:]).all()


@pytest.mark.skipif(not ON_CUDA, reason="the SSM dispatches to the kernel on CUDA only")
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_selective_ssm_with_the_kernel_matches_the_reference_path(monkeypatch, reverse):
    """A whole SelectiveSSM on CUDA, fused kernel path vs INFOMAMBA_KERNELS=reference: output and every
    parameter gradient, with a padded sample."""
    ssm = SelectiveSSM(64, dt_rank=4, reverse=reverse).to(DEVICE)
    x = torch.randn(3, 50, 64, device=DEVICE)
    mask = torch.zeros(3, 50, dtype=torch.bool, device=DEVICE)
    mask[1, 41:] = True
    results = []
    for mode in ("", "reference"):
        monkeypatch.setenv("INFOMAMBA_KERNELS", mode)
        ssm.zero_grad()
        r = ssm(x, mask)
        r.square().sum().backward()
        results.append([r] + [p.grad.clone() for p in ssm.parameters() if p.grad is not None])
    for got, want in zip(*results):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
