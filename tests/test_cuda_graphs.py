"""CUDA-graph capture of a forward and of a whole training step (`cuda_graphs.py`): replays must compute what the
eager model computes, step for step. The GPU tests run on the lent GPU (benchmarks/gpu/fused_ssm_runs.sh tests)."""
import contextlib
import copy
import threading

import pytest
import torch

from infomamba.bench import SequenceModel, main
from infomamba.config import EncoderConfig
from infomamba import cuda_graphs
from infomamba.cuda_graphs import GraphedEncoder, _FlatEncoder, graphed_forward, graphed_train_step
from infomamba.cli import main as cli_main
from infomamba.encoder import Encoder
from infomamba.mixers import without_training_terms
from test_distributed import last_metrics, newest_run

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")


def test_a_training_step_needs_a_capturable_optimizer():
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.AdamW(model.parameters())
    with pytest.raises(ValueError, match="capturable=True"):
        graphed_train_step(model, lambda out: out.sum(), opt, torch.randn(3, 4))


def test_bench_refuses_graph_rows_without_a_gpu(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit):
        main(["--mixers", "attention", "--resolutions", "32", "--cuda-graphs", "--out", str(tmp_path)])
    assert "--cuda-graphs needs a CUDA device" in capsys.readouterr().err


def _assert_same_trajectory(start, graphed, eager, share: float, floor: float = 1e-7):
    """Each parameter of the two runs ends apart by at most `share` of how far it moved from `start` (mean absolute
    values): a replay that left out a step, read stale data or stale weights would be apart by about its motion.
    A share, not an elementwise tolerance: the scan backward's fp32 atomics are not bitwise deterministic, and
    AdamW's normalised step turns the rounding of a near-zero gradient into a step of up to lr."""
    for (name, a), b, a0 in zip(graphed.named_parameters(), eager.parameters(), start.parameters()):
        apart, moved = (a - b).abs().mean().item(), (a - a0).abs().mean().item()
        assert apart <= share * moved + floor, f"{name}: runs {apart:.3g} apart, moved {moved:.3g}"


def _model(mixer: str) -> SequenceModel:
    torch.manual_seed(0)
    return SequenceModel(EncoderConfig(dim=32, depth=2, mixer=mixer), classes=5).cuda()


@cuda
@pytest.mark.parametrize("mixer", ["infomamba", "mamba", "attention"])
def test_a_replayed_forward_reads_new_data_copied_into_its_inputs(mixer):
    model = _model(mixer).eval()
    inputs = torch.randn(4, 64, 32, device="cuda")
    replay = graphed_forward(model, inputs)
    other = torch.randn_like(inputs)
    with torch.no_grad():
        expected = model(inputs), model(other)
    torch.testing.assert_close(replay(), expected[0], rtol=1e-4, atol=1e-5)
    inputs.copy_(other)
    torch.testing.assert_close(replay(), expected[1], rtol=1e-4, atol=1e-5)


@cuda
def test_captures_leave_no_memory_behind_once_their_replays_are_gone():
    """Each stream cuBLAS runs a matmul on keeps a workspace of its own until the process ends: captures that warmed
    up on a new pooled stream each left one more allocated (earlier tests' workspaces are cleared first)."""
    torch._C._cuda_clearCublasWorkspaces()
    model = torch.nn.Linear(64, 64).cuda()
    inputs = torch.randn(8, 64, device="cuda")
    allocated = []
    for _ in range(4):
        replay = graphed_forward(model, inputs, warmup=1)
        replay()
        del replay
        torch.cuda.synchronize()
        allocated.append(torch.cuda.memory_allocated())
    assert allocated[1:] == allocated[:1] * 3, allocated


@cuda
@pytest.mark.parametrize("mixer", ["infomamba", "mamba", "attention"])
def test_replayed_training_steps_follow_the_eager_steps(mixer):
    """Losses and weights after warm-up + 4 replays equal warm-up + 4 eager steps from the same start (InfoMamba
    draws Gumbel noise in training: each replay must draw what the eager step draws)."""
    graphed = _model(mixer).train()
    eager = copy.deepcopy(graphed)
    start = copy.deepcopy(graphed)
    inputs = torch.randn(4, 64, 32, device="cuda")
    labels = torch.randint(0, 5, (4,), device="cuda")

    def loss_fn(logits):
        return torch.nn.functional.cross_entropy(logits, labels)

    eager_opt = torch.optim.AdamW(eager.parameters(), lr=1e-2, capturable=True)
    torch.manual_seed(1)
    replay = graphed_train_step(graphed, loss_fn, torch.optim.AdamW(graphed.parameters(), lr=1e-2, capturable=True),
                                inputs, warmup=2)
    graphed_losses = [replay().item() for _ in range(4)]
    torch.manual_seed(1)
    eager_losses = []
    for _ in range(2 + 4):
        eager_opt.zero_grad(set_to_none=True)
        loss = loss_fn(eager(inputs))
        loss.backward()
        eager_opt.step()
        eager_losses.append(loss.item())
    assert graphed_losses == pytest.approx(eager_losses[2:], rel=1e-4, abs=1e-5)
    assert len(set(graphed_losses)) == 4  # the weights move between replays
    # floor 0.1 % of lr: InfoMamba's hash_head barely moves (5e-5) and ended 4.6e-6 apart on the H200 (docs/results.md)
    _assert_same_trajectory(start, graphed, eager, share=0.05, floor=1e-5)


def _encoder(mixer: str, device: str = "cuda") -> Encoder:
    torch.manual_seed(0)
    return Encoder(EncoderConfig(dim=32, depth=2, mixer=mixer, drop_path=0.1)).to(device).train()


def _objective(out) -> torch.Tensor:
    """A scalar that reads the hidden states and every auxiliary tensor a mixer reports (as Eq. 14 does)."""
    loss = out.hidden.float().square().mean()
    for aux in out.aux:
        for value in (aux.h_pool, aux.r_pool, aux.mi_hash, aux.k_eff):
            if value is not None:
                loss = loss + value.float().mean()
    return loss


def test_graphed_encoder_runs_the_eager_encoder_off_the_gpu():
    encoder = _encoder("infomamba", "cpu").eval()
    x = torch.randn(2, 8, 32)
    torch.testing.assert_close(GraphedEncoder(encoder)(x).hidden, encoder(x).hidden, rtol=0, atol=0)


@cuda
@pytest.mark.parametrize("mixer, grid", [("infomamba", None), ("mamba", None), ("attention", None),
                                         ("vmamba", (8, 8)), ("localmamba", (5, 12))])
@pytest.mark.parametrize("padded, autocast", [(False, None), (True, None), (False, torch.bfloat16)])
def test_graphed_encoder_training_follows_the_eager_encoder(mixer, grid, padded, autocast):
    """Three SGD steps on new data each: the replayed forward/backward gives the eager losses and weights
    (InfoMamba's Gumbel noise and drop-path draw what the eager step draws from the same seed). On an image grid
    the 2-D routes (columns; 2 x 2 windows, those of the last row holding 2 tokens) are made inside the capture: a route
    copied from the host at each call could not be captured at all."""
    if padded and grid:
        pytest.skip("image tokens on a grid come without padding")
    graphed_encoder = _encoder(mixer)
    eager_encoder = copy.deepcopy(graphed_encoder)
    start = copy.deepcopy(graphed_encoder)
    graphed = GraphedEncoder(graphed_encoder)
    length = 64 if grid is None else grid[0] * grid[1]
    mask = torch.zeros(4, length, dtype=torch.bool, device="cuda")
    if padded:
        mask[1, 50:] = True
    mask = mask if padded else None
    with torch.autocast("cuda", dtype=autocast or torch.float32, enabled=autocast is not None):
        _objective(graphed(torch.randn(4, length, 32, device="cuda"), mask, grid)).backward()  # the capture
    assert len(graphed.graphs) == 1
    graphed_encoder.zero_grad(set_to_none=True)
    runs = []
    for encoder, call in ((graphed_encoder, graphed), (eager_encoder, eager_encoder)):
        opt = torch.optim.SGD(encoder.parameters(), lr=0.1)
        losses = []
        for step in range(3):
            x = torch.randn(4, length, 32, device="cuda", generator=torch.Generator("cuda").manual_seed(step))
            torch.cuda.manual_seed(100 + step)
            with torch.autocast("cuda", dtype=autocast or torch.float32, enabled=autocast is not None):
                loss = _objective(call(x, mask, grid))
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
        runs.append(losses)
    tol = dict(rel=2e-2, abs=1e-3) if autocast else dict(rel=1e-4, abs=1e-5)
    assert runs[0] == pytest.approx(runs[1], **tol)
    assert len(set(runs[0])) == 3
    _assert_same_trajectory(start, graphed_encoder, eager_encoder, share=0.05 if autocast else 0.01)
    assert len(graphed.graphs) == 1


@cuda
def test_graphed_encoder_captures_each_shape_up_to_its_cap():
    encoder = _encoder("mamba")
    graphed = GraphedEncoder(encoder, max_shapes=2)
    for length in (64, 32):
        _objective(graphed(torch.randn(2, length, 32, device="cuda"))).backward()
    assert sorted(key[0] for key in graphed.graphs) == [(2, 32, 32), (2, 64, 32)]
    x = torch.randn(2, 16, 32, device="cuda")
    with pytest.warns(UserWarning, match="2 training batch shapes captured"):
        out = graphed(x)  # past the cap: the eager encoder, whose output is not a graph's static buffer
    torch.testing.assert_close(out.hidden, encoder(x).hidden, rtol=0, atol=0)
    encoder.eval()
    with torch.no_grad():
        for length in (64, 16):
            graphed(torch.randn(2, length, 32, device="cuda"))
        assert len(graphed.eval_graphs) == 2 and len(graphed.graphs) == 2  # evaluation has a cap of its own
        with pytest.warns(UserWarning, match="2 evaluation batch shapes captured"):
            out = graphed(torch.randn(2, 8, 32, device="cuda"))
        assert out.hidden.shape == (2, 8, 32)
    with torch.enable_grad():  # neither training with gradients nor evaluation without: eager, nothing captured
        x = torch.randn(2, 24, 32, device="cuda", requires_grad=True)
        graphed(x).hidden.sum().backward()
    assert x.grad is not None and len(graphed.eval_graphs) == 2


def _aux_tensors(out) -> list:
    return [getattr(aux, name) for aux in out.aux for name in ("h_pool", "r_pool", "mi_hash", "k_eff")]


@cuda
@pytest.mark.parametrize("mixer", ["infomamba", "mamba", "attention"])
@pytest.mark.parametrize("padded, autocast, mode", [(False, None, "no_grad"), (True, None, "inference_mode"),
                                                    (True, torch.bfloat16, "inference_mode"),
                                                    (False, None, "predicting")])
def test_graphed_encoder_evaluation_follows_the_eager_encoder(mixer, padded, autocast, mode):
    """Evaluation replays (validation under no_grad or inference_mode, predictions without the loss-only terms) give
    the eager encoder's hidden states and terms on new data each call, one capture for the signature; an output
    handed out earlier is a copy that a later replay leaves as it was."""
    encoder = _encoder(mixer).eval()
    graphed = GraphedEncoder(encoder)
    mask = torch.zeros(4, 64, dtype=torch.bool, device="cuda")
    mask[1, 50:] = True
    context = {"no_grad": torch.no_grad, "inference_mode": torch.inference_mode,
               "predicting": _predicting}[mode]
    outputs = []
    with context(), torch.autocast("cuda", dtype=autocast or torch.float32, enabled=autocast is not None):
        for step in range(3):
            x = torch.randn(4, 64, 32, device="cuda", generator=torch.Generator("cuda").manual_seed(step))
            if padded:
                mask[2, 40 + step:] = True
            got, want = graphed(x, mask if padded else None), encoder(x, mask if padded else None)
            tol = dict(rtol=2e-2, atol=2e-2) if autocast else dict(rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(got.hidden, want.hidden, **tol)
            for a, b in zip(_aux_tensors(got), _aux_tensors(want), strict=True):
                assert (a is None) == (b is None)
                if b is not None:
                    torch.testing.assert_close(a, b, **tol)
            outputs.append((got.hidden, got.hidden.clone()))
    if mode == "predicting":
        assert all(t is None for t in _aux_tensors(got))
    assert len(graphed.eval_graphs) == 1 and not graphed.graphs
    for handed_out, copy_then in outputs:
        torch.testing.assert_close(handed_out, copy_then, rtol=0, atol=0)
    assert not torch.equal(outputs[0][1], outputs[1][1])  # each replay read its new input


@cuda
def test_evaluation_captures_apart_what_changes_the_recorded_forward():
    """A prediction (no loss-only terms) and an evaluation under inference_mode each get a capture of their own at the
    same shape: a replay of another's graph would report the terms a prediction leaves out, or copy a no_grad call's
    input into an inference tensor (which only inference mode may write)."""
    encoder = _encoder("infomamba").eval()
    graphed = GraphedEncoder(encoder)
    x = torch.randn(2, 32, 32, device="cuda")
    with torch.no_grad():
        assert graphed(x).aux[0].h_pool is not None
    with torch.inference_mode():
        graphed(x)
    with _predicting():
        assert all(t is None for t in _aux_tensors(graphed(x)))
    with torch.no_grad():
        torch.testing.assert_close(graphed(x).hidden, encoder(x).hidden, rtol=1e-5, atol=1e-5)
    assert len(graphed.eval_graphs) == 3


@contextlib.contextmanager
def _predicting():
    with torch.inference_mode(), without_training_terms():
        yield


@cuda
def test_a_validation_replaying_graphs_logs_what_an_eager_one_logs(tmp_path, monkeypatch):
    """`validate` of a checkpoint with model.cuda_graphs (fp32) replays evaluation graphs and logs the metrics of the
    same validation run eagerly; the fit before it validated through graphs as well."""
    monkeypatch.chdir(tmp_path)
    replays = []
    replay = cuda_graphs._EvalGraph.__call__
    monkeypatch.setattr(cuda_graphs._EvalGraph, "__call__", lambda self, *a: replays.append(1) or replay(self, *a))
    args = ["--task", "text", "--data.listops_size=96", "--data.batch_size=8", "--data.pad_multiple=64",
            "--model.encoder.dim=32", "--model.encoder.depth=2", "--trainer.precision=32",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    cli_main(["fit", *args, "--cuda_graphs", "--trainer.max_epochs=1"])
    assert replays
    ckpt = newest_run(tmp_path, "text") / "checkpoints" / "last.ckpt"
    logged = {}
    for graphs in ("true", "false"):
        replays.clear()
        cli_main(["validate", *args, f"--model.cuda_graphs={graphs}", "--ckpt_path", str(ckpt)])
        assert bool(replays) == (graphs == "true")
        logged[graphs] = last_metrics(newest_run(tmp_path, "text"))
    assert logged["true"].keys() == logged["false"].keys() and "val/loss" in logged["true"]
    assert logged["true"] == pytest.approx(logged["false"], rel=1e-5, abs=1e-6)


def test_the_encoder_is_captured_in_thread_local_mode(monkeypatch):
    """make_graphed_callables (torch 2.11: no capture-mode argument) must open its graph contexts in "thread_local"
    mode, and torch.cuda.graph must be itself again afterwards."""
    modes = []

    class Recorder:
        def __init__(self, cuda_graph, pool=None, stream=None, capture_error_mode="global"):
            modes.append(capture_error_mode)

    def make_graphed_callables(module, sample):
        torch.cuda.graph(None, pool=None)  # as torch's forward and backward captures call it
        return module

    monkeypatch.setattr(torch.cuda, "graph", Recorder)
    monkeypatch.setattr(torch.cuda, "make_graphed_callables", make_graphed_callables)
    module = torch.nn.Identity()
    assert cuda_graphs._make_graphed(module, (torch.zeros(1),)) is module
    assert modes == ["thread_local"]
    assert torch.cuda.graph is Recorder


def _capture_while_pinning(lengths=(64, 32, 48)) -> tuple[GraphedEncoder, list[BaseException]]:
    """Capture one shape per length while another thread allocates and frees pinned host memory without pause, as a
    DataLoader's pin-memory thread does; returns the encoder and what either thread raised."""
    stop, errors = threading.Event(), []

    def pin():
        try:
            while not stop.is_set():
                torch.empty(1 << 20, dtype=torch.uint8).pin_memory()
                torch._C._host_emptyCache()  # the next pin allocates again (cudaHostAlloc), as after each capture
        except BaseException as error:  # noqa: BLE001 - reported to the test
            errors.append(error)

    thread = threading.Thread(target=pin)
    thread.start()
    graphed = GraphedEncoder(_encoder("mamba"))
    try:
        for length in lengths:
            _objective(graphed(torch.randn(2, length, 32, device="cuda"))).backward()
    except BaseException as error:  # noqa: BLE001
        errors.append(error)
    finally:
        stop.set()
        thread.join()
    return graphed, errors


@cuda
def test_capture_survives_a_thread_pinning_host_memory():
    """In the default "global" capture mode the other thread's pinned allocations invalidate the capture
    (cudaErrorStreamCaptureInvalidated: a speech fit died so on the H200)."""
    graphed, errors = _capture_while_pinning()
    assert errors == []
    assert len(graphed.graphs) == 3


@pytest.mark.parametrize("mixer", ["infomamba", "mamba"])
def test_the_flat_encoder_hands_graphs_tensors_only_and_rebuilds_the_output(mixer):
    """make_graphed_callables takes a tuple of tensors (no None): the aux fields a mixer leaves None (all of
    mamba's) are left out and come back as None, the others in their place."""
    encoder = _encoder(mixer, "cpu").eval()
    flat_encoder = _FlatEncoder(encoder, None)
    x = torch.randn(2, 8, 32)
    flat = flat_encoder(x)
    assert all(isinstance(t, torch.Tensor) for t in flat)
    rebuilt, expected = flat_encoder.output(flat, None), encoder(x)
    torch.testing.assert_close(rebuilt.hidden, expected.hidden, rtol=0, atol=0)
    assert len(rebuilt.aux) == len(expected.aux) == 2
    for got, want in zip(rebuilt.aux, expected.aux):
        for name in ("h_pool", "r_pool", "mi_hash", "k_eff"):
            a, b = getattr(got, name), getattr(want, name)
            assert (a is None) == (b is None), name
            if b is not None:
                torch.testing.assert_close(a, b, rtol=0, atol=0)
