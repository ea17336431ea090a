"""Resuming through the real CLI: a run stopped after an epoch (a checkpoint path given), and a run stopped
mid-epoch by SIGINT / SIGTERM in a subprocess and continued with `--ckpt_path last`, end where an
uninterrupted run ends."""
import csv
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from infomamba.cli import main
from infomamba.tasks.base import rescheduled


class StopAfterFirstEpoch(Callback):
    """Simulates an interruption: the run stops after epoch 0 with its schedule planned for 2 epochs."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


class PauseAtStep(Callback):
    """Prints a line before training step `step` and waits for a line on stdin: the test sends its signal
    meanwhile, so the signal arrives during that step."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            print(f"paused at step {self.step}", flush=True)
            sys.stdin.readline()


class PauseAtValidation(Callback):
    """As `PauseAtStep`, before the first batch of a validation the fit runs after training step `step`."""

    def __init__(self, step: int):
        self.step = step

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking and trainer.global_step == self.step and batch_idx == 0:
            print(f"paused at step {self.step}, validating", flush=True)
            sys.stdin.readline()


class PauseAtSetup(Callback):
    """Prints a line as the fit sets up (its data loaded, before Lightning's signal handling starts) and waits for a
    line on stdin: the test sends its signal meanwhile."""

    def setup(self, trainer, pl_module, stage):
        print("paused at setup", flush=True)
        sys.stdin.readline()


class PauseAtTestBatch(Callback):
    """Prints a line before the first test batch and waits for a line on stdin (the test sends Ctrl-C meanwhile)."""

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if batch_idx == 0:
            print("paused at test batch 0", flush=True)
            sys.stdin.readline()


# Runs whose weights are compared on CPU: GPU kernels with atomics (the scan's backward) differ run to run.
CPU = "--trainer.accelerator=cpu"
ARGS = ["--task", "text", "--data.listops_size=48", "--data.batch_size=16", "--model.encoder.dim=16",
        "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8}",
        "--model.head_dropout=0.2", "--trainer.enable_progress_bar=false", "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_model_summary=false"]
# 8 steps per epoch, 2 epochs; the signal arrives during step 3 (epoch 0, before any checkpoint), so the run
# stops at step 4.
SIGNALLED = ["--task", "text", "--data.listops_size=64", "--data.batch_size=8", "--model.encoder.dim=16",
             "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8, chunk: 8}",
             "--model.head_dropout=0.2", "--model.lr=0.01", "--trainer.max_epochs=2", "--trainer.log_every_n_steps=1",
             "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", CPU]
STEP, STEPS_PER_EPOCH, TOTAL_STEPS = 3, 8, 16


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_resume_matches_uninterrupted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *ARGS, CPU, "--trainer.max_epochs=2", "--trainer.default_root_dir=a",
          "--trainer.logger.init_args.save_dir=a"])
    main(["fit", *ARGS, CPU, "--trainer.max_epochs=2", "--trainer.default_root_dir=b",
          "--trainer.logger.init_args.save_dir=b", "--trainer.callbacks+=test_resume.StopAfterFirstEpoch"])
    first = next((tmp_path / "b").glob("text/version_0/checkpoints/last.ckpt"))
    main(["fit", *ARGS, CPU, "--trainer.max_epochs=2", "--trainer.default_root_dir=b",
          "--trainer.logger.init_args.save_dir=b", "--ckpt_path", str(first)])
    full = weights(next((tmp_path / "a").glob("text/version_0/checkpoints/last.ckpt")))
    resumed_ckpt = next((tmp_path / "b").glob("text/version_1/checkpoints/last.ckpt"))
    resumed = weights(resumed_ckpt)
    assert torch.load(resumed_ckpt, weights_only=False)["epoch"] == 1
    assert full.keys() == resumed.keys()
    for name in full:
        torch.testing.assert_close(resumed[name], full[name], atol=1e-5, rtol=1e-4, msg=name)
    moved = weights(first)
    assert any((moved[n] - full[n]).abs().max() > 1e-4 for n in full)


def training_means(run: Path) -> dict[int, dict[str, float]]:
    """The train/*_epoch values of a run's metrics.csv, by epoch."""
    means = {}
    for row in csv.DictReader((run / "metrics.csv").open()):
        logged = {k: float(v) for k, v in row.items() if k.startswith("train/") and k.endswith("_epoch") and v}
        if logged:
            means.setdefault(int(row["epoch"]), {}).update(logged)
    return means


def cli(args: list[str], cwd: Path, **kwargs) -> subprocess.Popen:
    path = os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "infomamba.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    out, _ = process.communicate(timeout=120)
    return process.returncode, out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The final weights and the training means (`training_means`) of an uninterrupted run with these options
    (each run once), e.g. loader workers: persistent workers draw no new base seed at an epoch start, where a loader
    without workers does, so the two differ."""
    runs = {}

    def final_weights(*args: str) -> tuple[dict[str, torch.Tensor], dict]:
        if args not in runs:
            cwd = tmp_path_factory.mktemp("uninterrupted")
            code, out = finish(cli(["fit", *SIGNALLED, *args], cwd))
            assert code == 0, out[-3000:]
            run = cwd / "runs" / "text" / "version_0"
            runs[args] = weights(run / "checkpoints" / "last.ckpt"), training_means(run)
        return runs[args]

    return final_weights


def signalled_fit(args: list[str], step: int, signum: int, folder, pause: str = "PauseAtStep") -> tuple[int, str]:
    """(exit status, output) of a fit in `folder` sent `signum` while the callback `pause` (`PauseAtStep`,
    `PauseAtValidation`) holds it after step `step`."""
    child = cli(["fit", *SIGNALLED, *args, f"--trainer.callbacks+=test_resume.{pause}",
                 f"--trainer.callbacks.step={step}"], folder, stdin=subprocess.PIPE)
    seen = []
    for line in child.stdout:
        seen.append(line)
        if line.startswith(f"paused at step {step}"):
            child.send_signal(signum)
            child.stdin.write("\n")
            child.stdin.flush()
    child.wait(timeout=120)
    return child.returncode, "".join(seen)


@pytest.mark.parametrize("signum, workers", [(signal.SIGINT, 0), (signal.SIGTERM, 2)],
                         ids=["SIGINT", "SIGTERM-2-workers"])
def test_signal_mid_epoch_then_ckpt_path_last_ends_like_an_uninterrupted_run(signum, workers, uninterrupted, tmp_path):
    """With loader workers too: they start only once the resumed epoch's sampler is placed."""
    run = tmp_path / "runs" / "text" / "version_0"
    code, out = signalled_fit([f"--data.num_workers={workers}"], STEP, signum, tmp_path)
    assert code == 128 + signum, out[-3000:]
    assert f"{signum.name}: stopped at epoch 0 step {STEP + 1}, wrote" in out
    stopped = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert stopped["global_step"] == STEP + 1 and stopped["global_step"] % STEPS_PER_EPOCH

    # Nothing but the task and --ckpt_path last: the run's folder and its config.yaml are found.
    code, out = finish(cli(["fit", "--task", "text", "--ckpt_path", "last"], tmp_path, stdin=subprocess.DEVNULL))
    assert code == 0, out[-3000:]
    assert "Restoring states from the checkpoint path at runs/text/version_0/checkpoints/last.ckpt" in out
    assert not (tmp_path / "runs" / "text" / "version_1").exists()
    assert "\n      version: 0\n" in (run / "config.yaml").read_text()  # the logger's (v_num), not "version_0"
    resumed = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert resumed["global_step"] == TOTAL_STEPS
    assert not list((run / "checkpoints").glob("last-v*.ckpt"))
    expected, expected_means = uninterrupted(f"--data.num_workers={workers}")
    assert resumed["state_dict"].keys() == expected.keys()
    for name, value in expected.items():
        torch.testing.assert_close(resumed["state_dict"][name], value, atol=1e-6, rtol=1e-5, msg=name)
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    steps = [int(row["step"]) for row in rows]
    assert min(steps) < STEP + 1 <= max(steps), "the resumed run appends to the interrupted run's metrics.csv"
    # every step's row once, the one trained as the signal came too, at an uninterrupted run's steps
    assert [int(row["step"]) for row in rows if row.get("train/loss_step")] == list(range(TOTAL_STEPS))
    means = training_means(run)  # the interrupted epoch's means over all its batches, not those since the resume
    assert means.keys() == expected_means.keys() == {0, 1}
    assert {"train/loss_epoch", "train/acc_epoch"} <= means[0].keys()
    for epoch, logged in expected_means.items():
        assert means[epoch] == pytest.approx(logged, rel=1e-5, abs=1e-6), epoch


def test_a_signal_inside_a_gradient_accumulation_window_stops_at_its_end(uninterrupted, tmp_path):
    """Stopped after a window's first micro-batch, the run had resumed with that batch's gradient lost to the next
    optimizer step (a checkpoint holds no accumulated gradient): it no longer ended as an uninterrupted run."""
    accumulate = "--trainer.accumulate_grad_batches=2"
    code, out = signalled_fit([accumulate], 1, signal.SIGTERM, tmp_path)  # paused before batch 2, a window's first
    assert code == 128 + signal.SIGTERM, out[-3000:]
    assert "SIGTERM: stopped at epoch 0 step 2, wrote" in out  # after batch 3, the window's last
    code, out = finish(cli(["fit", "--task", "text", "--ckpt_path", "last"], tmp_path, stdin=subprocess.DEVNULL))
    assert code == 0, out[-3000:]
    resumed = weights(tmp_path / "runs" / "text" / "version_0" / "checkpoints" / "last.ckpt")
    for name, value in uninterrupted(accumulate)[0].items():
        torch.testing.assert_close(resumed[name], value, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("pause, step", [("PauseAtValidation", 4), ("PauseAtStep", 3)],
                         ids=["during-the-validation", "during-the-step-before-it"])
def test_a_signal_during_a_validation_inside_an_epoch_stops_after_it(pause, step, uninterrupted, tmp_path):
    """Checked at the next step's end, the fit trained one step more after the validation before it stopped; noted at
    the end of the step before it, Lightning's loop stopped the validation after its first batch. It stops after the
    whole validation (its checkpoint saved), and the resumed run neither validates there again nor ends elsewhere
    than an uninterrupted run."""
    run = tmp_path / "runs" / "text" / "version_0"
    every = "--trainer.val_check_interval=4"  # validates after steps 4 and 8 of each 8-step epoch
    code, out = signalled_fit([every], step, signal.SIGTERM, tmp_path, pause=pause)
    assert code == 128 + signal.SIGTERM, out[-3000:]
    assert "SIGTERM: stopped at epoch 0 step 4, wrote" in out
    assert list((run / "checkpoints").glob("best-epoch=0-step=4.ckpt"))
    code, out = finish(cli(["fit", "--task", "text", "--ckpt_path", "last"], tmp_path, stdin=subprocess.DEVNULL))
    assert code == 0, out[-3000:]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    validated = [int(row["step"]) for row in rows if row.get("val/acc")]
    assert validated == [3, 7, 11, 15], validated  # the steps an uninterrupted run logs them at
    assert [int(row["step"]) for row in rows if row.get("train/loss_step")] == list(range(TOTAL_STEPS))
    expected, _ = uninterrupted(every)
    resumed = weights(run / "checkpoints" / "last.ckpt")
    for name, value in expected.items():
        torch.testing.assert_close(resumed[name], value, atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.parametrize("step, signum", [(STEPS_PER_EPOCH - 1, signal.SIGINT), (TOTAL_STEPS - 1, signal.SIGTERM)],
                         ids=["first-epoch", "last-epoch-SIGTERM"])
def test_a_signal_in_an_epochs_last_step_stops_after_its_validation(step, signum, tmp_path, monkeypatch):
    """Stopped before the epoch's validation, the resumed run found the epoch's batches done and never validated it:
    the best checkpoint was chosen without that epoch. SIGTERM too (Lightning's handling stopped there)."""
    run = tmp_path / "runs" / "text" / "version_0"
    epoch = step // STEPS_PER_EPOCH
    code, out = signalled_fit([], step, signum, tmp_path)
    assert code == 128 + signum, out[-3000:]
    assert f"{signum.name}: stopped after epoch {epoch}, at step {step + 1}, wrote" in out
    if step < STEPS_PER_EPOCH:  # the first validation is the best so far: its checkpoint is saved before the stop
        assert list((run / "checkpoints").glob(f"best-epoch=0-step={step + 1}.ckpt"))
    means = [row for row in csv.DictReader((run / "metrics.csv").open()) if row.get("train/loss_epoch")]
    assert [int(row["epoch"]) for row in means] == list(range(epoch + 1)), "the stopped epoch's training means"
    monkeypatch.chdir(tmp_path)  # the resume in this process: no weights compared, so the thread count may differ
    main(["fit", "--task", "text", "--ckpt_path", "last"])
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == TOTAL_STEPS
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    validated = [row for row in rows if row.get("val/acc")]
    assert sorted({int(row["epoch"]) for row in validated}) == [0, 1] and len(validated) == 2, validated
    assert [int(row["epoch"]) for row in rows if row.get("train/loss_epoch")] == [0, 1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_while_a_fit_sets_up_takes_back_its_folder_in_one_line(signum, tmp_path, monkeypatch):
    """A SIGTERM (a requeued SLURM job) while the data loaded had killed the process with no word, leaving a run folder
    that held only its lock: the same command then found the folder taken and nothing in it to continue. Ctrl-C here,
    inside Lightning's fit, which catches it, gets the same line after Lightning's own."""
    args = ["fit", *SIGNALLED, "--run_dir", "exp"]
    child = cli([*args, "--trainer.callbacks+=test_resume.PauseAtSetup"], tmp_path, stdin=subprocess.PIPE)
    for line in child.stdout:
        if line.startswith("paused at setup"):
            child.send_signal(signum)
            child.stdin.write("\n")
            child.stdin.flush()
            break
    out = child.communicate(timeout=120)[0]
    assert child.returncode == 128 + signum, out[-3000:]
    how = "at once, outside a training step or by a second Ctrl-C" if signum == signal.SIGINT else \
        "outside a training step"
    assert f"infomamba fit --task text: stopped by {signal.Signals(signum).name} {how}: nothing after the last " \
           "checkpoint was saved; took back exp, which it had claimed" in out, out[-3000:]
    assert "Traceback" not in out and not (tmp_path / "exp").exists()
    monkeypatch.chdir(tmp_path)  # the same command fits in that folder
    main([*args, "--trainer.max_steps=1", "--trainer.limit_val_batches=0"])
    assert (tmp_path / "exp" / "checkpoints" / "last.ckpt").is_file()


def test_ctrl_c_during_an_evaluation_exits_with_130(tmp_path, monkeypatch):
    """Lightning catches the KeyboardInterrupt of an evaluation and exits with 1, as if it had failed: the command
    exits with the shell's 130 and says so in one line."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *SIGNALLED, "--trainer.max_steps=1", "--trainer.limit_val_batches=0"])
    child = cli(["test", "--task", "text", "--ckpt_path", "runs/text/version_0/checkpoints/last.ckpt",
                 "--trainer.callbacks+=test_resume.PauseAtTestBatch"], tmp_path, stdin=subprocess.PIPE)
    lines = []
    for line in child.stdout:
        lines.append(line)
        if line.startswith("paused at test batch 0"):
            child.send_signal(signal.SIGINT)
            child.stdin.write("\n")
            child.stdin.flush()
    out = "".join(lines) + child.communicate(timeout=120)[0]
    assert child.returncode == 128 + signal.SIGINT, out[-3000:]
    assert "infomamba test --task text: stopped by SIGINT before it finished: no metrics were written" in out, \
        out[-3000:]


def test_ckpt_path_last_with_nothing_to_resume_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"--ckpt_path last: nothing to resume, no runs/text/version_\*/checkpoints"):
        main(["fit", *ARGS, "--ckpt_path", "last"])
    with pytest.raises(SystemExit, match="nothing to resume in --run_dir elsewhere"):
        main(["fit", *ARGS, "--ckpt_path", "last", "--run_dir", "elsewhere"])
    with pytest.raises(SystemExit, match="test --ckpt_path last: give the checkpoint file"):
        main(["test", *ARGS, "--ckpt_path", "last"])


def test_ckpt_path_last_to_a_damaged_checkpoint_is_a_one_line_error(tmp_path, monkeypatch):
    """A last.ckpt cut short (a full disk, a copy interrupted) had ended the resume with a traceback from torch.load."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp" / "checkpoints").mkdir(parents=True)
    (tmp_path / "exp" / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(SystemExit, match=r"^infomamba fit --task \S+: --ckpt_path last continues exp, whose "
                                         r"checkpoints/last.ckpt is not a "
                                         r"checkpoint Lightning saved \(torch.load: "):
        main(["fit", *ARGS, "--ckpt_path", "last", "--run_dir", "exp"])


def test_a_resumed_runs_config_with_a_key_no_option_has_is_named(tmp_path, monkeypatch):
    """A run's config.yaml from an older version, with an option since removed: two lines naming the file and the key
    (it had been jsonargparse's usage listing of every option)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exp" / "checkpoints").mkdir(parents=True)
    torch.save({}, tmp_path / "exp" / "checkpoints" / "last.ckpt")
    (tmp_path / "exp" / "config.yaml").write_text("model:\n  old_option: 3\n")
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: unknown key model.old_option in "
                                         r"exp/config.yaml"):
        main(["fit", *ARGS, "--ckpt_path", "last", "--run_dir", "exp"])


def test_a_resumed_run_with_lightnings_csv_logger_keeps_the_metrics_it_had(tmp_path, monkeypatch):
    """Lightning's CSVLogger deletes the metrics.csv of the folder it writes into: `--ckpt_path last` had lost the
    metrics of the run it continued."""
    monkeypatch.chdir(tmp_path)
    short = ["--trainer.logger=CSVLogger", "--trainer.logger.init_args.save_dir=runs", "--trainer.log_every_n_steps=1",
             "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1", "--run_dir", "exp"]
    main(["fit", *ARGS, *short, "--trainer.max_epochs=1"])
    with pytest.warns(UserWarning, match=r"schedule was laid over 1 steps and is now laid over 2 \(max_epochs, "
                                         r"max_steps, the data or the number of processes changed\): from step 1 the "
                                         r"learning rate is "):
        main(["fit", *ARGS, *short, "--trainer.max_epochs=2", "--ckpt_path", "last"])
    with open(tmp_path / "exp" / "metrics.csv") as file:
        assert [row["step"] for row in csv.DictReader(file) if row["val/acc"]] == ["0", "1"]


def test_a_resumed_schedule_laid_over_another_length_is_noted_with_the_learning_rates():
    """A larger max_epochs given to --ckpt_path last re-lays warm-up + cosine over the new total: the learning rate
    jumps back up, which the run did not say."""
    assert rescheduled(None, 100, 0.1, 0.0) is None and rescheduled((100, 50), 100, 0.1, 0.0) is None
    assert rescheduled((None, 50), 200, 0.1, 0.0) is None  # a checkpoint written before schedules were kept
    note = rescheduled((100, 100), 200, 0.1, 0.0)
    assert "laid over 100 steps and is now laid over 200" in note
    assert "from step 100 the learning rate is 0.587 x lr, not 0 x lr" in note
    over = rescheduled((126, 126), 96, 0.1, 0.01)  # a larger batch size: fewer steps than were done
    assert "now laid over 96" in over and "it ends before step 126, where the run stopped, so every step left " \
        "trains at its floor, 0.01 x lr" in over


def test_run_dir_names_the_run_folder_and_is_resumed_in_place(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    short = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
    main(["fit", *ARGS, *short, "--run_dir", "exp/one"])
    assert (tmp_path / "exp" / "one" / "checkpoints" / "last.ckpt").is_file()
    assert "run_dir: null" in (tmp_path / "exp" / "one" / "config.yaml").read_text()
    with pytest.raises(SystemExit, match="--run_dir exp/one exists: add --ckpt_path last"):
        main(["fit", *ARGS, *short, "--run_dir", "exp/one"])
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open('exp/one/.lock', "
                               "os.O_RDWR); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:  # the run still going elsewhere: a resume beside it would write the same checkpoints and metrics
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(SystemExit, match=r"^infomamba fit --task text: exp/one is in use by another fit "
                                         r"\(it holds exp/one/.lock\)"):
            main(["fit", *ARGS, *short, "--run_dir", "exp/one", "--ckpt_path", "last"])
    finally:
        holder.kill()
        holder.wait()
    main(["fit", *ARGS, "--trainer.max_epochs=2", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
          "--run_dir", "exp/one", "--ckpt_path", "last"])
    assert torch.load(tmp_path / "exp" / "one" / "checkpoints" / "last.ckpt", weights_only=False)["epoch"] == 1
    assert not (tmp_path / "runs").exists()
