"""DDP on CPU (gloo, 2 processes) through the real CLI: ranks see disjoint data, the synced metric of 2 ranks
equals the single-process metric over the same data, and a SIGTERM'd run resumes to the uninterrupted weights."""
import atexit
import csv
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from lightning.pytorch.callbacks import Callback

from infomamba.cli import main
from test_resume import training_means

TINY = ["--model.encoder.dim=16", "--model.encoder.depth=1",
        "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8, chunk: 8}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.log_every_n_steps=1"]
DDP = ["--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp"]


def cli(args: list[str], cwd: Path, returncode: int = 0) -> str:
    """Run `python -m infomamba.cli ...` as users do (Lightning re-launches it per rank)."""
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    with subprocess.Popen([sys.executable, "-m", "infomamba.cli", *args], cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True) as run:
        try:
            out, _ = run.communicate(timeout=300)
        except subprocess.TimeoutExpired:  # the whole group: a rank or loader worker left behind holds the pipe
            os.killpg(run.pid, signal.SIGKILL)
            out, _ = run.communicate()
            pytest.fail(f"infomamba {' '.join(args[:3])} ran past 300 s:\n{out[-3000:]}")
    print("RC", run.returncode, out[-800:]); assert run.returncode == returncode, out[-6000:]
    return out


class SlowExitOnRankZero(Callback):
    """Rank 0 exits 8 s after a stop, when the other rank has long exited: Lightning's launcher checks its child
    ranks every 5 s and kills rank 0 if one exited with an error."""

    def on_exception(self, trainer, pl_module, exception):
        if trainer.is_global_zero:
            atexit.register(time.sleep, 8)


class SaysHowWorkersStart(Callback):
    def on_train_start(self, trainer, pl_module):
        print(f"[test] rank {trainer.global_rank}: loader workers start by {multiprocessing.get_start_method()}")


class SigtermAtStep(Callback):
    """Rank 0 sends itself SIGTERM before training step `step`, as a scheduler preempting one process would."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step and trainer.is_global_zero:
            os.kill(os.getpid(), signal.SIGTERM)


def last_metrics(run: Path) -> dict[str, float]:
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    merged = {}
    for row in rows:
        merged.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return merged


def newest_run(root: Path, task: str) -> Path:
    return max((root / "runs" / task).glob("version_*"), key=lambda p: int(p.name.split("_")[1]))


def validate_both_ways(task_args: list[str], ckpt: Path, cwd: Path, task: str) -> tuple[dict, dict]:
    main(["validate", *task_args, "--trainer.devices=1", "--trainer.strategy=auto", "--ckpt_path", str(ckpt)])
    single = last_metrics(newest_run(cwd, task))
    out = cli(["validate", *task_args, *DDP, "--ckpt_path", str(ckpt)], cwd)
    ran = newest_run(cwd, task)
    assert out.count(f"[infomamba] validate done: metrics logged into runs/{task}/{ran.name}\n") == 1, out  # rank 0's
    return single, last_metrics(ran)


def test_text_ddp_validate_and_predict(tmp_path, monkeypatch):
    """A checkpoint validated by one process and by two ranks gives one accuracy; two ranks predict every input
    once, in the order of the inputs, also when one rank is dealt none."""
    monkeypatch.chdir(tmp_path)
    args = ["--task", "text", "--data.listops_size=96", "--data.batch_size=8", *TINY]
    main(["fit", *args, "--trainer.max_epochs=1"])
    ckpt = newest_run(tmp_path, "text") / "checkpoints" / "last.ckpt"
    single, ddp = validate_both_ways(args, ckpt, tmp_path, "text")
    assert ddp["val/acc"] == pytest.approx(single["val/acc"], abs=1e-6)

    lines = [f"[MAX {i // 10} {i % 10} ]" for i in range(21)]
    (tmp_path / "in.txt").write_text("\n".join(lines) + "\n")
    out = cli(["predict", *args, *DDP, "--ckpt_path", str(ckpt), f"--data.predict_path={tmp_path / 'in.txt'}"],
              tmp_path)
    files = {Path(p) for p in re.findall(r"predictions to (\S+?\.jsonl)", out)}
    assert len(files) == 1  # rank 0 writes every rank's predictions, in the order of the inputs
    rows = [json.loads(line) for line in files.pop().read_text().splitlines()]
    assert [(r["index"], r["text"]) for r in rows] == list(enumerate(lines))

    (tmp_path / "one.txt").write_text(lines[3] + "\n")  # fewer inputs than ranks: rank 1 is dealt none
    out = cli(["predict", *args, *DDP, "--ckpt_path", str(ckpt), f"--data.predict_path={tmp_path / 'one.txt'}"],
              tmp_path)
    written = Path(re.search(r"predictions to (\S+?\.jsonl)", out)[1])
    rows = [json.loads(line) for line in written.read_text().splitlines()]
    assert [(r["index"], r["text"]) for r in rows] == [(0, lines[3])]


def test_ddp_sigterm_mid_epoch_then_ckpt_path_last_ends_like_an_uninterrupted_run(tmp_path):
    """Two ranks with two loader workers each, stopped at step 2 of 4 in the first epoch: the resumed run ends
    with the uninterrupted run's weights (every rank continues its own data and its own random streams). Rank 0
    exits slowly: it is not killed as the other rank ends (exit status 143, not SIGKILL's -9). The uninterrupted
    run's checkpoints were written whole (no temporary file left)."""
    args = ["fit", "--task", "text", "--data.listops_size=64", "--data.batch_size=8", "--data.num_workers=2",
            "--model.head_dropout=0.2", "--model.lr=0.01", "--trainer.max_epochs=2", *TINY, *DDP]
    (tmp_path / "whole").mkdir()
    cli(args, tmp_path / "whole")
    checkpoints = list((tmp_path / "whole/runs/text/version_0/checkpoints").glob("*.ckpt"))
    assert checkpoints and all(".tmp" not in c.name for c in checkpoints)
    out = cli([*args, "--trainer.callbacks+=test_distributed.SigtermAtStep", "--trainer.callbacks.step=2",
               "--trainer.callbacks+=test_distributed.SlowExitOnRankZero",
               "--trainer.callbacks+=test_distributed.SaysHowWorkersStart"], tmp_path, returncode=128 + signal.SIGTERM)
    assert "SIGTERM: stopped at epoch 0 step" in out
    for rank in (0, 1):  # not by forking a rank that runs gloo's and Lightning's threads (a worker had hung)
        assert f"[test] rank {rank}: loader workers start by forkserver" in out
    cli(["fit", "--task", "text", "--ckpt_path", "last"], tmp_path)
    whole, resumed = (torch.load(root / "runs/text/version_0/checkpoints/last.ckpt", weights_only=False)
                      for root in (tmp_path / "whole", tmp_path))
    assert resumed["global_step"] == whole["global_step"] == 8
    for name, value in whole["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], value, atol=1e-6, rtol=1e-5, msg=name)
    whole_means, resumed_means = (training_means(root / "runs/text/version_0")
                                  for root in (tmp_path / "whole", tmp_path))
    assert resumed_means.keys() == whole_means.keys() == {0, 1}  # each rank's epoch sums, saved and added back
    for epoch, logged in whole_means.items():
        assert resumed_means[epoch] == pytest.approx(logged, rel=1e-5, abs=1e-6), epoch


def test_image_ddp_metric_equals_single_process(tmp_path, monkeypatch):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("val", 7)):
        for cls in ("a", "b", "c"):
            folder = tmp_path / "imgs" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    args = ["--task", "image", *TINY, f"--data.root={tmp_path / 'imgs'}", "--data.image_size=16",
            "--data.batch_size=4", "--data.num_workers=0", "--data.val_fraction=0.5", "--model.patch_size=4"]
    main(["fit", *args, "--trainer.max_epochs=1"])
    single, ddp = validate_both_ways(args, newest_run(tmp_path, "image") / "checkpoints" / "last.ckpt",
                                     tmp_path, "image")
    assert ddp["val/acc"] == pytest.approx(single["val/acc"], abs=1e-6)


def write_librispeech(root: Path) -> None:
    rng = np.random.default_rng(0)
    words = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"]
    for split, speakers in (("train-clean-100", 2), ("dev-clean", 2)):
        for spk in range(speakers):
            folder = root / split / str(100 + spk) / "7"
            folder.mkdir(parents=True)
            lines = []
            for utt in range(5):
                uid = f"{100 + spk}-7-{utt:04d}"
                text = " ".join(rng.choice(words, size=2))
                t = np.arange(int(16000 * 1.2)) / 16000
                audio = 0.3 * np.sin(2 * np.pi * (200 + 40 * utt) * t) + 0.01 * rng.standard_normal(t.size)
                soundfile.write(folder / f"{uid}.flac", audio.astype(np.float32), 16000)
                lines.append(f"{uid} {text}")
            (folder / f"{100 + spk}-7.trans.txt").write_text("\n".join(lines) + "\n")


def test_asr_ddp_wer_equals_single_process(tmp_path, monkeypatch):
    write_librispeech(tmp_path / "LibriSpeech")
    monkeypatch.chdir(tmp_path)
    args = ["--task", "asr", *TINY, f"--data.root={tmp_path / 'LibriSpeech'}", "--data.test_splits=[]",
            "--data.batch_size=3", "--model.spec_augment=false"]
    main(["fit", *args, "--trainer.max_epochs=1"])
    single, ddp = validate_both_ways(args, newest_run(tmp_path, "asr") / "checkpoints" / "last.ckpt",
                                     tmp_path, "asr")
    for key in ("val/wer", "val/cer", "val/dev-clean/wer"):
        assert ddp[key] == pytest.approx(single[key], abs=1e-6), key


def test_asr_predict_writes_one_line_per_audio_file(tmp_path, monkeypatch, capsys):
    write_librispeech(tmp_path / "LibriSpeech")
    monkeypatch.chdir(tmp_path)
    args = ["--task", "asr", *TINY, f"--data.root={tmp_path / 'LibriSpeech'}", "--data.test_splits=[]",
            "--data.batch_size=3"]
    main(["fit", *args, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2"])
    folder = tmp_path / "LibriSpeech" / "dev-clean"
    main(["predict", *args, "--ckpt_path", str(newest_run(tmp_path, "asr") / "checkpoints" / "last.ckpt"),
          f"--data.predict_path={folder}"])
    written = Path(capsys.readouterr().out.split("predictions to ")[-1].split()[0])
    rows = [json.loads(line) for line in written.read_text().splitlines()]
    assert sorted(Path(r["audio_filepath"]).name for r in rows) == sorted(p.name for p in folder.rglob("*.flac"))
    assert all(isinstance(r["text"], str) for r in rows)
