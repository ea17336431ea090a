"""The task registry: tasks found by name, only the chosen one imported, a task registered here usable
through the real CLI with a size linked from its data module."""
import json
import subprocess
import sys

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import infomamba
from infomamba.cli import main
from infomamba.tasks import registry
from infomamba.tasks.registry import get_task, list_tasks, register_task


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_importing_infomamba_and_listing_tasks_imports_no_task():
    out = run_python(
        "import json, sys, infomamba\n"
        "tasks = lambda: sorted(m for m in sys.modules if m.startswith('infomamba.tasks'))\n"
        "before = tasks()\n"
        "names = infomamba.list_tasks()\n"
        "print(json.dumps([before, names, tasks(), [m for m in ('lightning', 'torchvision') if m in sys.modules]]))")
    before, names, after, heavy = json.loads(out)
    assert before == [] and names == ["asr", "image", "text", "text_mlm"]
    assert after == ["infomamba.tasks", "infomamba.tasks.registry"] and heavy == []


def test_loading_the_text_task_imports_no_other_task():
    out = run_python(
        "import sys\n"
        "from infomamba.tasks import get_task\n"
        "get_task('text').load()\n"
        "print(sorted({m.split('.')[2] for m in sys.modules if m.startswith('infomamba.tasks.')}))")
    assert "image" not in out and "asr" not in out and "text" in out


def test_builtin_tasks_register_themselves():
    assert {"text", "image", "asr"} <= set(infomamba.list_tasks())
    spec = get_task("asr")
    assert spec.monitor == ("val/wer", "min") and spec.links["num_classes"] == "vocab_size"
    with pytest.raises(KeyError, match="unknown task 'video'"):
        get_task("video")


class ToyData(L.LightningDataModule):
    """y = x @ w on `features` inputs; `width`, known once built, stands for a vocabulary size."""

    def __init__(self, features: int = 3, size: int = 32):
        super().__init__()
        self.features = features
        x = torch.randn(size, features)
        self.data = TensorDataset(x, x.sum(-1, keepdim=True))

    @property
    def width(self) -> int:
        return self.features

    def train_dataloader(self):
        return DataLoader(self.data, batch_size=8)

    def val_dataloader(self):
        return DataLoader(self.data, batch_size=8)


class ToyModule(L.LightningModule):
    def __init__(self, width: int, lr: float = 0.05):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Linear(width, 1)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.mse_loss(self.net(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/mse", nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


@pytest.fixture
def clean_registry(monkeypatch):
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))


def test_a_task_registered_here_runs_through_the_cli(tmp_path, monkeypatch, clean_registry):
    register_task("toy", ToyModule, ToyData, monitor=("val/mse", "min"), max_epochs=2, links={"width": "width"})
    assert "toy" in list_tasks()
    monkeypatch.chdir(tmp_path)
    main(["fit", "--task", "toy", "--data.features=5", "--model.lr=0.01", "--trainer.enable_progress_bar=false",
          "--trainer.enable_model_summary=false"])
    run = tmp_path / "runs" / "toy" / "version_0"
    best = list((run / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1 and "epoch=" in best[0].name
    model = ToyModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt")
    assert model.hparams.width == 5 and torch.load(best[0], weights_only=False)["epoch"] == 1


def test_registering_another_pair_under_a_taken_name_fails(clean_registry):
    register_task("toy", ToyModule, ToyData)
    register_task("toy", ToyModule, ToyData)
    with pytest.raises(ValueError, match="already registered"):
        register_task("toy", ToyModule, L.LightningDataModule)
    with pytest.raises(ValueError, match="already registered"):
        register_task("text", ToyModule, ToyData)
