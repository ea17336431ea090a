"""Grid shapes, scan orders (LocalMamba's h / v / wK and flips), MultiScan routes and the grid conv."""
import pytest
import torch
import torch.nn.functional as F

from infomamba.layers.grid import GridConv, MultiScan, _kept_place, grid_shape, route_place


def scan_order(direction, grid):
    """The tokens (row-major indices) in the order the route reads them; None for the row-major route."""
    place = route_place(direction, grid, "cpu")
    return None if place is None else place.argsort()


def test_window_order_on_a_small_grid():
    assert scan_order("w2", (4, 4)).tolist() == [0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    assert scan_order("v", (2, 3)).tolist() == [0, 3, 1, 4, 2, 5]
    assert scan_order("h", (4, 4)) is None


def test_border_windows_hold_fewer_tokens():
    assert scan_order("w2", (3, 3)).tolist() == [0, 1, 3, 4, 2, 5, 6, 7, 8]


@pytest.mark.parametrize("direction", ["v", "w2", "w3_flip", "w7"])
@pytest.mark.parametrize("grid", [(4, 6), (5, 7), (3, 2)])
def test_places_are_permutations_that_route_and_read_back(direction, grid):
    place = route_place(direction, grid, "cpu")
    n = grid[0] * grid[1]
    assert sorted(place.tolist()) == list(range(n))
    x = torch.randn(n)
    routed = torch.empty_like(x).index_copy(0, place, x)
    assert torch.equal(routed, x[scan_order(direction, grid)])
    assert torch.equal(routed.index_select(0, place), x)


@pytest.mark.parametrize("direction", ["h", "v", "w2", "w7_flip"])
def test_one_dimensional_input_reads_contiguous_tokens(direction):
    assert route_place(direction, (1, 17), "cpu") is None


def test_grid_shape_and_its_refusals():
    assert grid_shape(12, None, None, causal=True) == (1, 12)
    assert grid_shape(12, None, (3, 4), causal=False) == (3, 4)
    with pytest.raises(ValueError, match="1-D sequences only"):
        grid_shape(12, None, (3, 4), causal=True)
    with pytest.raises(ValueError, match="no padding"):
        grid_shape(12, torch.zeros(1, 12, dtype=torch.bool), (3, 4), causal=False)
    for grid in [(3, 5), (-3, -4), (3.0, 4.0), (12,), 12]:
        with pytest.raises(ValueError, match=r"is not an \(H, W\) pair covering the 12 tokens"):
            grid_shape(12, None, grid, causal=False)


@pytest.mark.parametrize("name", ["vmamba", "localmamba", "vmisa"])
def test_a_2d_mixer_refuses_a_grid_that_does_not_cover_its_tokens(name):
    from infomamba.mixers import build_mixer

    with pytest.raises(ValueError, match=r"grid \(3, 5\) is not an \(H, W\) pair covering the 16 tokens"):
        build_mixer(name, 8)(torch.randn(1, 16, 8), None, (3, 5))


def test_multiscan_checks_directions_and_flips_reverse_the_scan():
    scans = MultiScan(8, ("h", "w2_flip"), dt_rank=1, d_state=4)
    assert [s.reverse for s in scans.ssms] == [False, True]
    assert all(s.dt_rank == 1 for s in scans.ssms)
    with pytest.raises(ValueError, match="unknown scan direction"):
        MultiScan(8, ("diag",), dt_rank=1)


def test_column_route_is_the_row_route_of_the_transposed_grid():
    torch.manual_seed(0)
    H, W = 3, 5
    scans = MultiScan(8, ("v", "v_flip"), dt_rank=1, d_state=4, d_conv=2)
    x = torch.randn(2, H * W, 8)
    transposed = x.view(2, H, W, 8).transpose(1, 2).reshape(2, H * W, 8)
    for ssm, out in zip(scans.ssms, scans(x, None, (H, W))):
        expected = ssm(transposed).view(2, W, H, 8).transpose(1, 2).reshape(2, H * W, 8)
        torch.testing.assert_close(out, expected)


def test_grid_conv_is_a_same_padded_depthwise_conv_on_the_grid():
    conv = GridConv(4, (3, 3))
    x = torch.randn(2, 5, 6, 4)
    want = F.conv2d(x.permute(0, 3, 1, 2), conv.conv.weight, conv.conv.bias, padding=1, groups=4)
    torch.testing.assert_close(conv(x.reshape(2, 30, 4), None, (5, 6)), want.flatten(2).transpose(1, 2))


@pytest.mark.parametrize("causal, reach", [(False, [True, False]), (True, [False, False])])
def test_grid_conv_on_a_sequence_sees_one_ahead_or_none(causal, reach):
    """Width 3 on the 1 x L grid: 'same' reads t - 1 .. t + 1, causal t - 2 .. t."""
    conv = GridConv(4, (3, 3), causal)
    x = torch.randn(1, 10, 4)
    y = conv(x, None, (1, 10))
    for k, expected in zip((1, 2), reach):
        x2 = x.clone()
        x2[:, 4 + k] += 1.0
        assert (not torch.allclose(conv(x2, None, (1, 10))[:, 4], y[:, 4])) == expected


def test_grid_conv_zeroes_padding_first():
    conv = GridConv(4, (3, 3))
    x = torch.randn(1, 8, 4)
    mask = torch.zeros(1, 8, dtype=torch.bool)
    mask[:, 5:] = True
    noisy = x.clone()
    noisy[:, 5:] = 100.0
    torch.testing.assert_close(conv(noisy, mask, (1, 8)), conv(x.masked_fill(mask[..., None], 0.0), None, (1, 8)))


@pytest.mark.parametrize("direction", ["v", "w2"])
def test_a_route_first_read_under_inference_mode_trains_after(direction):
    """The cached order of a first call under torch.inference_mode (an evaluation, a bench's inference rows) serves a
    later training step, whose backward saves the tensors it indexes with."""
    _kept_place.cache_clear()
    scans = MultiScan(8, (direction,), dt_rank=1, d_state=4, d_conv=2)
    x = torch.randn(2, 3 * 5, 8)
    with torch.inference_mode():
        scans(x, None, (3, 5))
    out, = scans(x.requires_grad_(), None, (3, 5))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_a_compiled_route_equals_the_kept_one():
    """Under torch.compile the route is made in the graph (not read from the cache): the scans' values and input
    gradients equal eager's for a window route, its flip and the column route, on a grid with border windows."""
    torch.manual_seed(0)
    scans = MultiScan(8, ("w2", "w2_flip", "v"), dt_rank=1, d_state=4, d_conv=2)
    x = torch.randn(2, 5 * 7, 8, requires_grad=True)
    compiled = torch.compile(scans, backend="aot_eager", fullgraph=True)
    results = []
    for run in (scans, compiled):
        outs = torch.cat(run(x, None, (5, 7)), -1)
        weights = torch.arange(outs.numel()).view_as(outs).sin()
        results.append((outs.detach(), *torch.autograd.grad((outs * weights).sum(), x)))
    (eager, eager_grad), (traced, traced_grad) = results
    torch.testing.assert_close(traced, eager)
    torch.testing.assert_close(traced_grad, eager_grad)
