"""CUDA-graph capture of a forward and of a whole training step (`cuda_graphs.py`): replays must compute what the
eager model computes, step for step. The GPU tests run on the lent GPU (benchmarks/gpu/fused_ssm_runs.sh tests)."""
import copy

import pytest
import torch

from infomamba.bench import SequenceModel, main
from infomamba.config import EncoderConfig
from infomamba.cuda_graphs import graphed_forward, graphed_train_step

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
@pytest.mark.parametrize("mixer", ["infomamba", "mamba", "attention"])
def test_replayed_training_steps_follow_the_eager_steps(mixer):
    """Losses and weights after warm-up + 4 replays equal warm-up + 4 eager steps from the same start (InfoMamba
    draws Gumbel noise in training: each replay must draw what the eager step draws)."""
    graphed = _model(mixer).train()
    eager = copy.deepcopy(graphed)
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
    for (name, a), b in zip(graphed.named_parameters(), eager.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5, msg=name)
