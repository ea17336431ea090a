"""benchmarks/eval_graphs.py: a run without a GPU stops with one line; `evaluating` leaves out the loss-only terms
only for predictions."""
import pytest
import torch

from benchmark_scripts import load
from infomamba.config import EncoderConfig
from infomamba.tasks.image.module import ImageClassifier

eval_graphs = load("eval_graphs")


def test_a_run_without_a_gpu_stops_with_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="^eval_graphs.py: CUDA graphs need a CUDA device$"):
        eval_graphs.main(["--resolutions", "32"])


@pytest.mark.parametrize("predicting", [False, True])
def test_evaluating_runs_inference_mode_and_predictions_without_the_terms(predicting):
    model = ImageClassifier(num_classes=3, encoder=EncoderConfig(dim=16, depth=1), image_size=32).eval()
    with eval_graphs.evaluating(model, predicting):
        logits, out = model(torch.randn(2, 3, 32, 32))
        assert torch.is_inference_mode_enabled()
    assert logits.shape == (2, 3)
    assert (out.aux[0].h_pool is None) == predicting
