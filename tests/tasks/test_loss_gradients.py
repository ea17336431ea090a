"""tasks/loss_gradients.py: the gradient norm of each weighted summand of Eq. 14, through the real CLI."""
import math
import re

import pytest
import torch

from infomamba.cli import main
from infomamba.tasks.loss_gradients import LossGradientNorms, gradient_norms

TEXT = ["--task", "text", "--data.listops_size=64", "--data.batch_size=16", "--model.encoder.dim=16",
        "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8, chunk: 8}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        "--trainer.enable_checkpointing=false"]


def test_each_norm_is_its_own_terms_gradient_and_the_graph_survives():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = torch.tensor([0.5, 4.0], requires_grad=True)
    shared = (x * x).sum() + (y * y).sum()
    terms = {"task": shared + (3 * x).sum(), "red": 0.01 * (y * y).sum(), "off": torch.tensor(2.0)}
    norms = gradient_norms(terms, [x, y])
    want_task = torch.cat([2 * x + 3, 2 * y]).norm()
    torch.testing.assert_close(norms["task"], want_task.detach())
    torch.testing.assert_close(norms["red"], (0.01 * 2 * y).norm().detach())
    assert norms["off"] == 0
    sum(t for t in terms.values() if t.requires_grad).backward()  # the step's own backward still runs
    torch.testing.assert_close(x.grad, 2 * x.detach() + 3)


def test_every_n_steps_must_be_positive():
    with pytest.raises(ValueError, match="every_n_steps must be >= 1, got 0"):
        LossGradientNorms(every_n_steps=0)


@pytest.mark.filterwarnings("error:Trying to infer the")  # logged without a batch size, Lightning guessed one
def test_fit_logs_a_norm_for_every_summand_on_the_recorded_steps(tmp_path, monkeypatch, capsys):
    """InfoMamba on the text task has all five summands; the callback is added as the module docstring says,
    and its norms reach the epoch line (the run's metrics). Gamma 0 gives the penalty's summand a zero gradient."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1",
          "--model.loss.gamma=0", "--trainer.callbacks+=infomamba.tasks.loss_gradients.LossGradientNorms",
          "--trainer.callbacks.every_n_steps=2"])
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("[infomamba] epoch 0"))
    assert "_step=" not in line  # the epoch's values, not also the last step's
    norms = dict(re.findall(r"train/grad_norm/(\w+?)=(\S+)", line))
    assert set(norms) == {"task", "nce_h", "nce_r", "red", "mi_hash"}, line  # the epoch means
    assert float(norms["red"]) == 0 and all(math.isfinite(float(v)) and float(v) > 0
                                            for k, v in norms.items() if k != "red")
