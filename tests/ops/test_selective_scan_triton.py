"""Triton selective scan (ops/selective_scan/triton.py) against its chunked reference (reference.py).

Forward output and the gradients of all six inputs, in both directions, with and without D, with
right-padding (dt = u = 0 on a tail), at every config the autotuner may pick. On a machine without
CUDA the kernels run in Triton's interpreter (TRITON_INTERPRET=1, set and patched by tests/conftest.py)
in fp32; on CUDA the same tests run in fp32 and bf16
(and fp16 in test_matches_reference), plus n = 64 configs, L = 1000 and the autotuner itself. The
case list is chosen to keep the number of compiled kernel variants (the GPU run's cost) near 70.

Tolerances are relative to the largest magnitude of the reference tensor: fp32 2e-4 (the GPU uses
ex2.approx; the interpreter agrees to ~1e-6), bf16 / fp16 3e-2 (inputs, du, ddt and y are rounded to
16 bits; state and accumulation stay fp32).
"""
import pytest
import torch
import torch.nn.functional as F

ON_CUDA = torch.cuda.is_available()
triton = pytest.importorskip("triton")

from infomamba.ops.selective_scan import triton as ss
from infomamba.ops.selective_scan import selective_scan_reference

DEVICE = "cuda" if ON_CUDA else "cpu"
FP32, BF16, FP16 = torch.float32, torch.bfloat16, torch.float16
DTYPES = [FP32, BF16] if ON_CUDA else [FP32]  # sweeps; fp16 joins test_matches_reference on CUDA
TOL = {FP32: 2e-4, BF16: 3e-2, FP16: 3e-2}
NAMES = ("u", "delta", "A", "B", "C", "D")


@pytest.fixture(autouse=True)
def _first_candidate(monkeypatch):
    """Each kernel's first candidate unless a test forces another (autotuning every variant would
    compile every candidate: minutes on the GPU); test_autotuned_path_... turns tuning back on."""
    monkeypatch.setenv("INFOMAMBA_SCAN_AUTOTUNE", "0")


@pytest.fixture
def chunk(request, monkeypatch):
    """CHUNK (positions between the backward's saved states); small by default so that L = 37 spans
    several chunks and the chunk-boundary logic runs."""
    monkeypatch.setattr(ss, "CHUNK", getattr(request, "param", 16))
    return ss.CHUNK


def make_inputs(batch=2, length=37, d=16, n=16, dtype=torch.float32, has_d=True, seed=0):
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g)

    u = randn(batch, length, d)
    delta = F.softplus(randn(batch, length, d) - 1.0)  # (0, ~3), mostly around 0.3: Mamba's regime
    A = -torch.exp(0.5 * randn(d, n))
    B, C = randn(batch, length, n), randn(batch, length, n)
    D = randn(d) if has_d else None
    cast = [u, delta, B, C]
    u, delta, B, C = (t.to(DEVICE, dtype) for t in cast)
    return [u, delta, A.to(DEVICE), B, C, D.to(DEVICE) if D is not None else None]


def run_kernel(args, dy, reverse):
    leaves = [a.clone().requires_grad_() if a is not None else None for a in args]
    y = ss.selective_scan_triton(*leaves, reverse=reverse)
    y.backward(dy)
    return y.detach(), [a.grad if a is not None else None for a in leaves]


def run_reference(args, dy, reverse):
    """The reference on fp32 copies of the same (possibly 16-bit-rounded) values."""
    leaves = [a.detach().float().requires_grad_() if a is not None else None for a in args]
    y = selective_scan_reference(*leaves, reverse=reverse)
    y.backward(dy.float())
    return y.detach(), [a.grad if a is not None else None for a in leaves]


def assert_close(got, want, tol, what):
    scale = max(1.0, want.abs().max().item())
    err = (got.float() - want.float()).abs().max().item()
    assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol:g} x {scale:.3g}"


def check_against_reference(args, reverse, tol):
    dy = torch.randn(args[0].shape, generator=torch.Generator().manual_seed(1)).to(DEVICE, args[0].dtype)
    y, grads = run_kernel(args, dy, reverse)
    y_ref, grads_ref = run_reference(args, dy, reverse)
    assert y.dtype == args[0].dtype
    assert_close(y, y_ref, tol, "y")
    for name, got, want, arg in zip(NAMES, grads, grads_ref, args):
        if arg is None:
            continue
        assert got.dtype == arg.dtype and got.shape == arg.shape, name
        assert_close(got, want, tol, f"d{name}")


MAIN_CASES = [(reverse, has_d, FP32) for reverse in (False, True) for has_d in (True, False)]
if ON_CUDA:
    MAIN_CASES += [(False, True, BF16), (True, True, BF16), (False, False, FP16)]


@pytest.mark.parametrize("reverse,has_d,dtype", MAIN_CASES, ids=lambda v: str(v).replace("torch.", ""))
def test_matches_reference(chunk, reverse, has_d, dtype):
    check_against_reference(make_inputs(dtype=dtype, has_d=has_d), reverse, TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [4, 16, 64] if ON_CUDA else [4, 16])
def test_every_config_the_autotuner_may_pick(chunk, n, dtype):
    """Each kernel forced to each of its candidates (block sizes, lane splits, warps).

    The i-th forward and i-th backward candidates run together, in the reverse direction for odd i
    (the direction is index arithmetic; the layouts are what differs). n = 64 gets layouts whose
    warps split the states. The interpreter sweeps n = 4 only (for time): the same layouts with
    longer tiles; n = 16's first candidates run in test_matches_reference.
    """
    args = make_inputs(n=n, dtype=dtype)
    block_n = triton.next_power_of_2(n)
    fwd, bwd = ss.candidate_configs("fwd", block_n), ss.candidate_configs("bwd", block_n)
    for i in range(max(len(fwd), len(bwd))):
        with ss.force_config(fwd=fwd[min(i, len(fwd) - 1)], bwd=bwd[min(i, len(bwd) - 1)]):
            check_against_reference(args, reverse=bool(i % 2), tol=TOL[dtype])


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("chunks,prefetch", [(2, False), (3, True)])
def test_time_chunks_match_one_program_per_sample(chunk, monkeypatch, reverse, chunks, prefetch):
    """The chunk-parallel launch (each time chunk its own program, entered with the state the earlier
    chunks fold to and the adjoint the later ones fold to) against the reference, the last chunk
    shorter than the others, with D and with a padded tail; a wrong fold of either carry fails here.
    With prefetch the backward's reverse pass reads ahead across tiles inside each chunk."""
    args = make_inputs(batch=2, length=70, d=16, n=4)
    args[0][1, 50:] = 0
    args[1][1, 50:] = 0
    fwd = ss.candidate_configs("fwd", 4)[0]._replace(chunks=chunks)
    bwd = ss.candidate_configs("bwd", 4)[0]._replace(chunks=chunks, prefetch=prefetch)
    assert ss._time_chunks(70, fwd)[0] == chunks
    with ss.force_config(fwd=fwd, bwd=bwd):
        check_against_reference(args, reverse, TOL[torch.float32])


def test_time_chunked_backward_launches_no_forward_kernel(chunk, monkeypatch):
    """The backward's chunk transfers (S, Delta) come from its ADJOINT_ONLY launch, not from a forward-kernel launch:
    the forward kernel runs once (the forward's own, one chunk here) and the gradients, with the backward in three
    chunks, are the reference's."""
    fwd = ss.candidate_configs("fwd", 4)[1]
    bwd = ss.candidate_configs("bwd", 4)[0]._replace(chunks=3)
    launches = []
    launch_forward = ss._launch_forward

    def spy(*args, **kwargs):
        launches.append((args[11], kwargs["states_only"]))
        return launch_forward(*args, **kwargs)

    monkeypatch.setattr(ss, "_launch_forward", spy)
    with ss.force_config(fwd=fwd, bwd=bwd):
        check_against_reference(make_inputs(batch=2, length=70, d=16, n=4), False, TOL[torch.float32])
    assert launches == [(fwd, False)]


def test_time_chunked_variants_only_where_programs_are_few():
    cfg = ss.ScanConfig(2, 1, 16, 1)
    assert ss.time_chunked(cfg, programs=3072, length=196, resident=1584) == [cfg]
    few = ss.time_chunked(cfg, programs=384, length=16384, resident=1584)
    assert few == [cfg, cfg._replace(chunks=9)]
    assert ss.time_chunked(cfg, programs=384, length=600, resident=1584) == [cfg, cfg._replace(chunks=2)]


@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
@pytest.mark.parametrize("chunks", [1, 3])
def test_strided_B_and_C_give_what_contiguous_ones_give(chunk, reverse, chunks):
    """The launchers read B and C through their batch and row strides: the fused SSM op passes them as views
    of x_proj's (batch, L, R + 2N) output. Views and contiguous copies give the same y and gradients, with
    softplus and a padding mask in the kernels as the op runs them, in one program per sample and in three
    time chunks (whose STATES_ONLY and ADJOINT_ONLY launches read B and C too); the B and C rows differ, so a
    kernel that ignored the row stride would read the wrong rows."""
    u, delta, A, B, C, D = make_inputs(batch=2, length=45, d=16, n=4)
    x_dbl = torch.cat([torch.randn(2, 45, 3, device=DEVICE), B, C], dim=-1)
    B_view, C_view = x_dbl[..., 3:7], x_dbl[..., 7:]
    assert B_view.stride() == (45 * 11, 11, 1)
    At = A.t().contiguous()
    dy = torch.randn(u.shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    mask = torch.zeros(2, 45, dtype=torch.bool, device=DEVICE)
    mask[1, 30:] = True
    fwd, bwd = (ss.candidate_configs(kind, 4)[0]._replace(chunks=chunks) for kind in ("fwd", "bwd"))
    assert ss._time_chunks(45, fwd)[0] == chunks

    def scan(B, C):
        kwargs = dict(dt_softplus=True, padding_mask=mask)
        with ss.force_config(fwd=fwd, bwd=bwd):
            return (ss._forward(u, delta, At, B, C, D, reverse, **kwargs),
                    *ss._backward(u, delta, At, B, C, D, dy, reverse, **kwargs))

    for name, got, want in zip(("y", "du", "ddelta", "dA", "dBC", "dD"), scan(B_view, C_view), scan(B, C)):
        torch.testing.assert_close(got, want, msg=lambda m: f"{name}: {m}")


@pytest.mark.parametrize("chunk", [64], indirect=True)
def test_default_chunk_and_odd_sizes(chunk):
    """The default CHUNK, a state size that is not a power of two and a width not a block multiple."""
    check_against_reference(make_inputs(batch=3, length=70, d=11, n=5), True, TOL[torch.float32])


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_right_padding_matches_the_unpadded_sample(chunk, reverse, dtype):
    """dt = u = 0 on a right-padded tail: the real positions see exactly the unpadded sample alone.

    B and C keep garbage on the tail (callers need not zero them); the loss ignores padded outputs.
    """
    real, length = 23, 37
    args = make_inputs(batch=1, length=length, dtype=dtype)
    padded = [a.clone() if a is not None else None for a in args]
    padded[0][:, real:] = 0
    padded[1][:, real:] = 0
    dy = torch.randn(1, length, args[0].shape[2]).to(DEVICE, dtype)
    dy[:, real:] = 0
    y_pad, grads_pad = run_kernel(padded, dy, reverse)
    alone = [a[:, :real] if a is not None and a.dim() == 3 else a for a in args]
    y_alone, grads_alone = run_kernel(alone, dy[:, :real], reverse)
    tol = TOL[dtype]
    assert_close(y_pad[:, :real], y_alone, tol, "y")
    for name, got, want in zip(NAMES, grads_pad, grads_alone):
        if name in ("u", "delta", "B", "C"):
            got = got[:, :real]
        assert_close(got, want, tol, f"d{name}")


@pytest.mark.skipif(not ON_CUDA, reason="long sequences are too slow for the interpreter")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_long_sequence_default_chunk(reverse, dtype):
    """L = 1000 crosses 16 saved-state chunks: the re-anchored suffix sums stay at the tolerance."""
    check_against_reference(make_inputs(batch=2, length=1000, d=96, n=16, dtype=dtype), reverse, TOL[dtype])


@pytest.mark.skipif(not ON_CUDA, reason="long sequences are too slow for the interpreter")
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("reverse", [False, True], ids=["fwd", "rev"])
def test_long_sequence_time_chunked(reverse, dtype):
    """L = 1000 in 4 time chunks of 256 (the last shorter), as the autotuner may pick at small batch:
    the folded carries keep the default-chunk tolerance."""
    fwd, bwd = (ss.candidate_configs(kind, 16)[0]._replace(chunks=4) for kind in ("fwd", "bwd"))
    assert ss._time_chunks(1000, fwd) == (4, 256)
    with ss.force_config(fwd=fwd, bwd=bwd):
        check_against_reference(make_inputs(batch=2, length=1000, d=96, n=16, dtype=dtype), reverse, TOL[dtype])


@pytest.mark.skipif(not ON_CUDA, reason="needs CUDA")
def test_autotuned_path_and_non_contiguous_inputs(monkeypatch):
    """No forced config (the autotuner runs), inputs given as transposed views."""
    monkeypatch.setenv("INFOMAMBA_SCAN_AUTOTUNE", "1")
    u, delta, A, B, C, D = make_inputs(batch=4, length=200, d=64, n=16, dtype=torch.bfloat16)
    views = [t.transpose(1, 2).contiguous().transpose(1, 2) for t in (u, delta, B, C)]
    assert not views[0].is_contiguous()
    check_against_reference([views[0], views[1], A, views[2], views[3], D], False, TOL[torch.bfloat16])


def test_environment_pins_either_kernel(monkeypatch):
    """INFOMAMBA_SCAN_CONFIG pins both kernels with one config, or each kernel named with its own (the other left to
    the autotuner); an unknown kernel name is refused."""
    monkeypatch.setenv("INFOMAMBA_SCAN_CONFIG", "4,1,32,1")
    assert ss._pinned("fwd") == ss._pinned("bwd") == ss.ScanConfig(4, 1, 32, 1)
    monkeypatch.setenv("INFOMAMBA_SCAN_CONFIG", "bwd=2,1,16,1,1,1")
    assert ss._pinned("fwd") is None
    assert ss._pinned("bwd") == ss.ScanConfig(2, 1, 16, 1, chunks=1, prefetch=True)
    monkeypatch.setenv("INFOMAMBA_SCAN_CONFIG", "fwd=4,1,64,2 bwd=2,4,8,1")
    assert (ss._pinned("fwd"), ss._pinned("bwd")) == (ss.ScanConfig(4, 1, 64, 2), ss.ScanConfig(2, 4, 8, 1))
    monkeypatch.setenv("INFOMAMBA_SCAN_CONFIG", "back=2,1,16,1")
    with pytest.raises(ValueError, match="back"):
        ss._pinned("bwd")
