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


@pytest.mark.parametrize("reverse", [False, True])
def test_ssd_form_is_causal_in_its_direction(reverse):
    """The SSD form (dt and A a head): a change at t reaches t and only the positions after it (forward) or
    before it (reverse), every one of them."""
    torch.manual_seed(0)
    ssm = SelectiveSSM(8, dt_rank=2, d_state=4, reverse=reverse, heads=2)
    x = torch.randn(1, 12, 8)
    x2 = x.clone()
    x2[:, 6] += 1.0
    with torch.no_grad():
        changed = (ssm(x) - ssm(x2)).abs().amax(-1)[0] > 0
    assert changed[6]
    assert not (changed[7:] if reverse else changed[:6]).any()
    assert (changed[:6] if reverse else changed[7:]).all()


def test_ssd_form_parameters_and_their_initialisation():
    """heads=H: dt_proj (H, R) with one bias a head, softplus(bias) in [dt_min, dt_max]; A_log (H,) with A in
    [1, 16] (Mamba-2's init); x_proj and D as in the Mamba-1 form; H must divide the inner width."""
    torch.manual_seed(0)
    inner, rank, n, heads = 24, 3, 5, 6
    ssd = SelectiveSSM(inner, dt_rank=rank, d_state=n, heads=heads)
    mamba1 = SelectiveSSM(inner, dt_rank=rank, d_state=n)
    assert ssd.dt_proj.weight.shape == (heads, rank) and ssd.dt_proj.bias.shape == (heads,)
    assert ssd.A_log.shape == (heads,)
    assert ssd.x_proj.weight.shape == mamba1.x_proj.weight.shape == (rank + 2 * n, inner)
    assert ssd.D.shape == (inner,) and torch.equal(ssd.D, torch.ones(inner))
    assert ssd.conv.weight.shape == mamba1.conv.weight.shape
    A = ssd.A_log.exp()
    assert ((A >= 1) & (A <= 16)).all() and A.std() > 0
    dt = torch.nn.functional.softplus(ssd.dt_proj.bias)
    assert ((dt >= 1e-3 * 0.999) & (dt <= 0.1 * 1.001)).all()
    assert mamba1.dt_proj.bias.shape == (inner,) and mamba1.A_log.shape == (inner, n) and mamba1.heads is None
    with pytest.raises(ValueError, match=r"^ssm_heads=5 must divide the SSM's inner width 24 "):
        SelectiveSSM(inner, dt_rank=rank, heads=5)


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("pad", ["right", "left"])
def test_ssd_form_padding_is_invisible_to_real_tokens(reverse, pad):
    """A padded sample's real-token outputs equal the unpadded sample's (padding_mask True at padding),
    whatever the padded positions hold."""
    torch.manual_seed(0)
    ssm = SelectiveSSM(8, dt_rank=2, d_state=4, reverse=reverse, heads=4)
    real = torch.randn(1, 9, 8)
    noise = 3 * torch.randn(1, 5, 8)
    x = torch.cat([real, noise] if pad == "right" else [noise, real], 1)
    mask = torch.zeros(1, 14, dtype=torch.bool)
    if pad == "right":
        mask[:, 9:] = True
    else:
        mask[:, :5] = True
    with torch.no_grad():
        y = ssm(x, mask)
        alone = ssm(real)
    torch.testing.assert_close(y[~mask].view(1, 9, 8), alone, rtol=1e-5, atol=1e-6)


def test_ssm_directions_pass_heads_to_every_direction():
    from infomamba.layers.ssm import ssm_directions
    both = ssm_directions(12, causal=False, dt_rank=2, d_state=4, heads=3)
    assert [(s.reverse, s.heads, tuple(s.A_log.shape)) for s in both] == [(False, 3, (3,)), (True, 3, (3,))]
    assert [s.heads for s in ssm_directions(12, causal=True, dt_rank=2)] == [None]


@pytest.mark.parametrize("heads", [None, 2], ids=["mamba1", "ssd"])
def test_projection_weights_cast_before_the_op_give_what_casting_inside_gave(monkeypatch, heads):
    """Under bf16 autocast the layer hands the fused op x_proj's and dt_proj's weights cast once (`compute_dtype`),
    so the op's backward neither casts them again nor its gradients back (the cast's own backward does). Output and
    every gradient equal, bit for bit, the op fed the fp32 weights (which it casts itself both ways); the weights'
    gradients stay fp32. The Triton kernels (the interpreter on CPU)."""
    from infomamba.ops.ssm_inner import ssm_inner

    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    torch.manual_seed(0)
    inner = 32 if heads else 16
    ssm = SelectiveSSM(inner, dt_rank=2, d_state=16 if heads else 4, heads=heads).to(DEVICE)
    x = torch.randn(2, 24, inner, device=DEVICE)

    def run(forward):
        ssm.zero_grad()
        xin = x.clone().requires_grad_()
        with torch.autocast(DEVICE, dtype=torch.bfloat16):
            y = forward(xin.to(torch.bfloat16))
        y.float().square().sum().backward()
        return [y, xin.grad] + [p.grad for p in ssm.parameters()]

    cast_outside = run(ssm)
    cast_inside = run(lambda u: ssm_inner(u, ssm.conv.weight[:, 0], ssm.conv.bias, None, None, ssm.x_proj.weight,
                                          ssm.dt_proj.weight, ssm.dt_proj.bias, ssm.A_log, ssm.D, None, ssm.reverse))
    assert ssm.x_proj.weight.grad.dtype == ssm.dt_proj.weight.grad.dtype == torch.float32
    for got, want in zip(cast_outside, cast_inside, strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("heads", [None, 2], ids=["mamba1", "ssd"])
def test_both_directions_run_as_one_op_unless_a_direction_is_hooked(monkeypatch, heads):
    """Two directions run as the pair op (`ssm_inner_pair`), one op call; with a hook on a direction (the diagnostics
    observe each call) each direction runs alone and the hook sees it. Readout and every gradient (x, h, p and both
    directions' parameters) agree between the two paths, padding included. The Triton kernels (the interpreter on
    CPU)."""
    from infomamba.layers import ssm as layer

    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    torch.manual_seed(0)
    inner = 32 if heads else 16
    both = layer.ssm_directions(inner, causal=False, dt_rank=2, d_state=16 if heads else 4, heads=heads).to(DEVICE)
    x, h = (torch.randn(2, 21, inner, device=DEVICE, requires_grad=True) for _ in range(2))
    p = torch.randn(inner, device=DEVICE, requires_grad=True)
    mask = torch.zeros(2, 21, dtype=torch.bool, device=DEVICE)
    mask[1, 15:] = True
    pairs, pair = [], layer.ssm_inner_pair
    monkeypatch.setattr(layer, "ssm_inner_pair", lambda *a: pairs.append(1) or pair(*a))

    def run():
        both.zero_grad()
        r = both(x, mask, h, p)
        grads = torch.autograd.grad(r.square().sum(), [x, h, p, *both.parameters()])
        return [r, *grads]

    fused = run()
    assert pairs == [1]
    seen = []
    handle = both[1].register_forward_hook(lambda module, args, out: seen.append(module.reverse))
    apart = run()
    handle.remove()
    assert pairs == [1] and seen == [True]
    for got, want in zip(fused, apart, strict=True):
        torch.testing.assert_close(got, want, rtol=2e-4, atol=2e-5)
