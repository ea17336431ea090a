"""tasks/resume.py: a fit resumed inside an epoch shows that epoch in the progress bar, its number, its batches and
the batches done (Lightning skips `on_train_epoch_start` there, and the bar read "Training: 2/?")."""
from lightning.pytorch.callbacks import Callback

from test_resume_at_epoch_end import FIRST, RESUME, fit


class Bar(Callback):
    """Records the training bar as each batch ends, before the bar counts it: (description, total, position)."""
    seen: list[tuple[str, int | None, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        bar = trainer.progress_bar_callback.train_progress_bar
        self.seen.append((bar.desc, bar.total, bar.n))


def test_a_fit_resumed_inside_an_epoch_shows_the_epoch_its_batches_and_those_done(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bar = ["--trainer.enable_progress_bar=true", "--trainer.callbacks+=test_resume_progress_bar.Bar"]
    assert fit(*FIRST, *bar, "--trainer.max_epochs=2", "--trainer.max_steps=2", "--run_dir=run") == [(0, 0, 0),
                                                                                                      (0, 1, 1)]
    Bar.seen.clear()
    assert fit(*RESUME, bar[0], "--trainer.max_epochs=2", "--trainer.max_steps=4") == [(0, 2, 2), (1, 0, 3)]
    assert Bar.seen == [("Epoch 0: ", 3, 2), ("Epoch 1: ", 3, 0)]
