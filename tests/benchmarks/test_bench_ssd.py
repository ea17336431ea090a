"""benchmarks/bench_ssd.py: its chunked SSD scan is the Mamba-1 scan with dt and A shared within each head."""
import pytest
import torch

from infomamba.ops.selective_scan import selective_scan_reference

from benchmark_scripts import load

bench_ssd = load("bench_ssd")


@pytest.mark.parametrize("chunk", [8, 16])
@pytest.mark.parametrize("with_d", [True, False])
def test_ssd_chunks_equal_the_mamba1_reference_with_head_shared_dt_and_A(chunk, with_d):
    x, dt, A, B, C, D = bench_ssd.inputs(2, 48, 3, 4, 5, torch.float32, "cpu")
    D = D if with_d else None
    got = bench_ssd.ssd_chunked(x, dt, A, B, C, D, chunk)
    u, delta, A1 = bench_ssd.as_mamba1(x, dt, A, 5)
    want = selective_scan_reference(u, delta, A1, B, C, D)
    assert got.shape == want.shape == (2, 48, 12)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * want.abs().max().item())


def test_states_cross_chunks():
    """A sequence longer than one chunk whose second chunk sees only the first chunk's state: zero input after
    position 8 leaves y there a pure decay of that state, as the reference gives (a chunk form that dropped the
    state entering a chunk would give zeros)."""
    x, dt, A, B, C, _ = bench_ssd.inputs(1, 32, 2, 3, 4, torch.float32, "cpu")
    x[:, 8:] = 0
    got = bench_ssd.ssd_chunked(x, dt, A, B, C, None, 8)
    u, delta, A1 = bench_ssd.as_mamba1(x, dt, A, 4)
    want = selective_scan_reference(u, delta, A1, B, C, None)
    assert want[:, 16:].abs().max() > 1e-3
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_length_not_a_chunk_multiple_is_refused():
    x, dt, A, B, C, D = bench_ssd.inputs(1, 20, 2, 3, 4, torch.float32, "cpu")
    with pytest.raises(ValueError, match="multiple of the chunk"):
        bench_ssd.ssd_chunked(x, dt, A, B, C, D, 8)
