"""The fused SSM inner op (ops/ssm_inner/triton.py) against its PyTorch reference.

Values and the gradients of every input, both directions, with and without conv, the injection P h
(with a learned diagonal P and with P = I) and padding
(right and left), and the op's two promises: training saves nothing but its inputs, and a mixer built
on it traces under torch.compile without graph breaks. Without CUDA the kernels run in Triton's
interpreter (tests/conftest.py) in fp32; on CUDA in fp32 and bf16, at larger shapes too.
"""
import pytest
import torch

from infomamba.ops.selective_scan import triton as scan
from infomamba.ops.ssm_inner import ssm_inner, ssm_inner_reference
from infomamba.ops.ssm_inner.triton import ssm_inner_triton

ON_CUDA = torch.cuda.is_available()
DEVICE = "cuda" if ON_CUDA else "cpu"
DTYPES = [torch.float32, torch.bfloat16] if ON_CUDA else [torch.float32]
TOL = {torch.float32: 2e-4, torch.bfloat16: 4e-2}


@pytest.fixture(autouse=True)
def _first_scan_config(monkeypatch):
    monkeypatch.setenv("INFOMAMBA_SCAN_AUTOTUNE", "0")
    monkeypatch.setattr(scan, "CHUNK", 16)


def make_inputs(B=2, L=37, E=16, N=4, R=2, K=4, conv=True, inject="p", pad=None, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).to(DEVICE)

    params = dict(
        x=randn(B, L, E).to(dtype),
        conv_w=randn(E, K, scale=0.5) if conv else None, conv_b=randn(E, scale=0.1) if conv else None,
        h=randn(B, L, E, scale=0.3).to(dtype) if inject else None, p=randn(E, scale=0.5) if inject == "p" else None,
        x_proj_w=randn(R + 2 * N, E, scale=E ** -0.5), dt_proj_w=randn(E, R, scale=R ** -0.5),
        dt_proj_b=randn(E, scale=0.5) - 2.0, A_log=torch.log(torch.arange(1, N + 1.0)).repeat(E, 1).to(DEVICE),
        D=randn(E))
    for t in params.values():
        if t is not None:
            t.requires_grad_(True)
    mask = None
    if pad == "right":
        mask = torch.zeros(B, L, dtype=torch.bool, device=DEVICE)
        mask[0, L - 9:] = True
    elif pad == "left":
        mask = torch.zeros(B, L, dtype=torch.bool, device=DEVICE)
        mask[1, :7] = True
    return params, mask


def run(fn, params, mask, reverse, dy):
    y = fn(*params.values(), mask, reverse)
    grads = torch.autograd.grad(y, [t for t in params.values() if t is not None], dy)
    return y, dict(zip([k for k, t in params.items() if t is not None], grads))


def assert_close_rel(actual, expected, tol, what):
    scale = expected.float().abs().max().clamp_min(1e-6)
    err = (actual.float() - expected.float()).abs().max() / scale
    assert err <= tol, f"{what}: relative error {err:.2e} > {tol:.0e}"


def assert_fused_matches_reference(params, mask, reverse, dtype, tol):
    """The fused op's y and gradients in `dtype` against the reference run in fp32 on the same inputs (relative to each
    reference tensor's largest entry), each gradient in its input's dtype, none to padded inputs."""
    dy = torch.randn(params["x"].shape, generator=torch.Generator().manual_seed(1)).to(DEVICE, dtype)
    y, grads = run(ssm_inner_triton, params, mask, reverse, dy)
    exact = {k: t.detach().float().requires_grad_(True) if t is not None else None for k, t in params.items()}
    y_ref, grads_ref = run(ssm_inner_reference, exact, mask, reverse, dy.float())
    assert y.dtype == dtype
    assert_close_rel(y, y_ref, tol, "y")
    for name in grads_ref:
        assert grads[name].dtype == params[name].dtype, name
        assert_close_rel(grads[name], grads_ref[name], tol, f"d{name}")
    if mask is not None:
        assert (grads["x"][mask] == 0).all(), "padded inputs must get no gradient"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("conv,inject,pad", [(True, "p", None), (True, None, "right"), (False, "identity", "left"),
                                             (True, "p", "left")])
def test_fused_matches_reference(dtype, reverse, conv, inject, pad):
    """In bf16 the oracle is the reference in fp32 on the same (bf16-valued) inputs: the kernels compute in fp32
    and round where the reference's bf16 run does not (dt's bias is added before rounding, for one), so against
    the bf16 reference both runs' rounding would add up (dA_log 4.1e-2 on the H200, 3.7e-2 against the fp32 run's
    1.3e-2 in the interpreter)."""
    params, mask = make_inputs(conv=conv, inject=inject, pad=pad, dtype=dtype)
    assert_fused_matches_reference(params, mask, reverse, dtype, TOL[dtype])


@pytest.mark.parametrize("reverse", [False, True])
def test_x_as_a_view_of_in_projs_output(reverse):
    """x given as the mixer gives it, the first half of in_proj's (B, L, 2E) output: the conv kernels read it in
    place through its strides (no copy), with padding masked on load, and the gradient reaches the whole."""
    params, mask = make_inputs(pad="left")
    E = params["x"].shape[2]
    xz = torch.cat([params["x"].detach(), torch.randn(params["x"].shape, device=DEVICE)], -1).requires_grad_(True)
    leaves = [xz] + [t for k, t in params.items() if t is not None and k != "x"]
    dy = torch.randn(params["x"].shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)

    def readout(fn):
        x = xz[..., :E]
        assert not x.is_contiguous()
        return fn(*dict(params, x=x).values(), mask, reverse)

    y, y_ref = readout(ssm_inner_triton), readout(ssm_inner_reference)
    assert_close_rel(y, y_ref, TOL[torch.float32], "y")
    grads, grads_ref = torch.autograd.grad(y, leaves, dy), torch.autograd.grad(y_ref, leaves, dy)
    for i, (got, want) in enumerate(zip(grads, grads_ref)):
        assert_close_rel(got, want, TOL[torch.float32], f"gradient of input {i} (0: in_proj's output)")


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("pad", ["right", "left"])
def test_time_chunked_scan_inside_the_fused_op(reverse, pad):
    """The chunk-parallel scan launch (3 time chunks of 16 positions, the last shorter) with softplus and
    the padding mask applied inside the kernels, as the fused op runs it where the autotuner picks it."""
    params, mask = make_inputs(L=45, pad=pad)
    dy = torch.randn(params["x"].shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    fwd, bwd = (scan.candidate_configs(kind, 4)[0]._replace(chunks=3) for kind in ("fwd", "bwd"))
    assert scan._time_chunks(45, fwd) == (3, 16)
    with scan.force_config(fwd=fwd, bwd=bwd):
        y, grads = run(ssm_inner_triton, params, mask, reverse, dy)
    y_ref, grads_ref = run(ssm_inner_reference, params, mask, reverse, dy)
    assert_close_rel(y, y_ref, TOL[torch.float32], "y")
    for name in grads_ref:
        assert_close_rel(grads[name], grads_ref[name], TOL[torch.float32], f"d{name}")


def test_softplus_inside_the_kernel_over_its_whole_range():
    """The scan kernels apply dt = softplus(dt_pre) themselves: dt_pre from -30 (softplus ~ e^-30) to +90
    (past PyTorch's threshold 20, softplus = identity; exp(90) overflows fp32, so a naive log(1 + exp)
    would give inf). dt up to 90 makes the states ~90x their usual size, and the kernel's fp32 sums over L
    round in another order than the reference's (on an H200 up to 2.5e-4 of the largest dt_proj_b gradient),
    so the bar is per entry (rtol 1e-3, atol 2e-4 of the largest); the three channels from -30 to -14, whose
    dt_proj_b gradients are 1e-12 to 1e-5, must match to rtol 1e-3 on their own."""
    params, mask = make_inputs(E=16, pad="right")
    with torch.no_grad():
        params["dt_proj_b"].copy_(torch.linspace(-30.0, 90.0, 16))
        params["dt_proj_w"].mul_(0.01)
    dy = torch.randn(params["x"].shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    for reverse in (False, True):
        y, grads = run(ssm_inner_triton, params, mask, reverse, dy)
        y_ref, grads_ref = run(ssm_inner_reference, params, mask, reverse, dy)
        assert_close_rel(y, y_ref, TOL[torch.float32], "y")
        for name in ("dt_proj_b", "dt_proj_w", "x"):
            atol = 2e-4 * grads_ref[name].abs().max().item()
            torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-3, atol=atol, msg=f"d{name}")
        torch.testing.assert_close(grads["dt_proj_b"][:3], grads_ref["dt_proj_b"][:3], rtol=1e-3, atol=0)


def test_padding_is_invisible_to_real_tokens():
    """Right-padding a sequence with garbage changes neither its readout nor its gradients."""
    params, _ = make_inputs(B=1, L=20, pad=None)
    longer = {k: (torch.cat([t.detach(), 5 * torch.randn_like(t.detach()[:, :6])], 1).requires_grad_(True)
                  if k in ("x", "h") else t) for k, t in params.items()}
    mask = torch.zeros(1, 26, dtype=torch.bool, device=DEVICE)
    mask[:, 20:] = True
    for reverse in (False, True):
        y = ssm_inner_triton(*params.values(), None, reverse)
        y_pad = ssm_inner_triton(*longer.values(), mask, reverse)
        torch.testing.assert_close(y_pad[:, :20], y, atol=1e-5, rtol=1e-4)


def test_training_saves_only_the_inputs():
    """The autograd graph of the fused op holds x, h and the parameters, no intermediate (not even P h); the
    reference holds many (B, L, E)-sized tensors (the memory the op exists to remove)."""
    params, mask = make_inputs(L=33, pad="right")
    inputs = {t.data_ptr() for t in params.values() if t is not None} | {mask.data_ptr()}

    def saved_by(fn):
        saved = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
            fn(*params.values(), mask, False)
        return saved

    fused = saved_by(ssm_inner_triton)
    assert fused and all(t.data_ptr() in inputs for t in fused), "the fused op saved an intermediate"
    big = params["x"].numel()
    reference_intermediates = [t for t in saved_by(ssm_inner_reference)
                               if t.data_ptr() not in inputs and t.numel() >= big]
    assert len(reference_intermediates) >= 4


def test_dispatch_runs_the_fused_op_when_kernels_run(monkeypatch):
    params, mask = make_inputs(pad="right")
    monkeypatch.setenv("INFOMAMBA_KERNELS", "triton")
    fused = ssm_inner(*params.values(), mask, True)
    torch.testing.assert_close(fused, ssm_inner_triton(*params.values(), mask, True))
    monkeypatch.setenv("INFOMAMBA_KERNELS", "reference")
    torch.testing.assert_close(ssm_inner(*params.values(), mask, True),
                               ssm_inner_reference(*params.values(), mask, True))


@pytest.mark.parametrize("inject, pad", [(None, False), ("I", True), ("p", False), ("p", True)])
def test_the_injection_backward_kernel_over_several_programs(inject, pad):
    """du = (du_scan + d W) at real tokens, dh = P du, dp = sum du h, over 3 x 100 tokens and 300 channels, with
    x_proj's K = 40 (padded to a block of 64 inside): three programs along the tokens (each with its own dp partial
    row) and two along the channels."""
    from infomamba.ops.ssm_inner.triton import _injection_backward

    g = torch.Generator().manual_seed(0)
    a, h = (torch.randn(3, 100, 300, generator=g).to(DEVICE) for _ in range(2))
    d, w = torch.randn(3, 100, 40, generator=g).to(DEVICE), torch.randn(40, 300, generator=g).to(DEVICE)
    p = torch.randn(300, generator=g).to(DEVICE) if inject == "p" else None
    h = h if inject else None
    mask = (torch.rand(3, 100, generator=g) < 0.2).to(DEVICE) if pad else None
    du, dh, dp = _injection_backward(a, d, w, h, p, mask)
    want = a + d @ w
    want = want * (~mask).unsqueeze(-1) if pad else want
    torch.testing.assert_close(du, want, rtol=1e-5, atol=1e-4)
    if inject:
        torch.testing.assert_close(dh, want * p if p is not None else want, rtol=1e-5, atol=1e-4)
    else:
        assert dh.numel() == 0
    if p is not None:
        torch.testing.assert_close(dp, (want * h).sum((0, 1)), rtol=1e-5, atol=1e-3)
    else:
        assert dp.numel() == 0


def compile_injection_variants() -> dict:
    """{variant: error or ''}: the injection backward kernel with bf16 activations, fp32 p, for sm_90, at x_proj's
    K of the shipped widths (R 24 + 2N 32 = 56: one block of 64) and at a block of 128 (fewer channels a program)."""
    from infomamba.ops.ssm_inner import triton as inner
    from sm90_compile import compile_all

    kernel = inner._injection_bwd_kernel
    types = {n: "*i1" if n == "pad_ptr" else "*fp32" if n in ("p_ptr", "part_ptr") else "*bf16"
             for n in kernel.arg_names if n.endswith("_ptr")}
    types.update(n_rows="i32", E="i32", K="i32")
    jobs = {}
    for K in (56, 96):
        block_e, block_k = inner.injection_blocks(768, K)
        for has_h, has_p, has_pad in ((False, False, False), (False, False, True), (True, False, True),
                                      (True, True, False), (True, True, True)):
            for acc in (False, True) if has_h else (False,):
                constants = dict(HAS_H=has_h, HAS_P=has_p, HAS_PAD=has_pad, BLOCK_R=inner._INJECTION_ROWS,
                                 BLOCK_E=block_e, BLOCK_K=block_k, TILES=inner._INJECTION_TILES, ACC=acc, PREC="tf32")
                jobs[f"K={K} HAS_H={has_h} HAS_P={has_p} HAS_PAD={has_pad} ACC={acc}"] = (kernel, types, constants, 4)
    return compile_all(jobs)


def test_the_injection_backward_kernel_compiles_for_sm90(tmp_path):
    from sm90_compile import assert_every_variant_compiles

    assert_every_variant_compiles(__file__, "compile_injection_variants", tmp_path / "triton-cache", 16)
