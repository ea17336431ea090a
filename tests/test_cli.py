"""The real entry point, in-process: fit / validate / test / predict on tiny generated data."""
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
import typing
from typing import Optional, Union

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from infomamba import cli
from infomamba.cli import QUIET_WARNINGS, main, pop_task, read_limits_as_lightning_does, shorthands

TINY = ["--model.encoder.dim=16", "--model.encoder.depth=1",
        "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8, chunk: 8}",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
TEXT = ["--task", "text", "--data.listops_size=64", "--data.batch_size=16", "--trainer.log_every_n_steps=1", *TINY]


def only(pattern: str, root: Path) -> Path:
    found = sorted(root.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_text_fit_test_predict_roundtrip(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2",
          "--data.cache_dir=cache"])
    run = only("runs/text/version_*", tmp_path)
    config = (run / "config.yaml").read_text()
    assert "mixer: infomamba" in config and "k_max: 8" in config
    assert f"  cache_dir: {tmp_path / 'cache'}\n" in config  # kept absolute: evaluated below from another folder
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    metrics = (run / "metrics.csv").read_text()
    assert "val/acc" in metrics and "train/nce_h" in metrics and "train/red" in metrics
    ckpt = run / "checkpoints" / "last.ckpt"
    assert ckpt.is_file() and not list((run / "checkpoints").glob(".*tmp*"))

    main(["test", "--task", "text", "--ckpt_path", str(ckpt), "--trainer.limit_test_batches=2"])
    assert "test/acc" in capsys.readouterr().out

    texts = tmp_path / "inputs.txt"
    inputs = ["[SM 1 2 ]", "[MAX 2 9 [MIN 4 7 ] 0 ]", "[SM 1 2 ]", "[MIN 3 [MAX 1 2 ] 5 ]", "[SM 1 2 3 ]"]
    texts.write_text("\n".join(inputs) + "\n")  # the loader batches them by length: longest first
    main(["predict", "--task", "text", "--ckpt_path", str(ckpt), "--data.predict_path", str(texts),
          "--data.batch_size=2"])
    out = capsys.readouterr().out
    written = Path(out.split("predictions to ")[-1].split()[0])
    rows = [json.loads(line) for line in written.read_text().splitlines()]
    assert [(r["index"], r["text"]) for r in rows] == list(enumerate(inputs))
    assert all(r["label"] in [str(i) for i in range(10)] and 0 <= r["score"] <= 1 for r in rows)


def test_a_checkpoint_moved_from_its_run_is_evaluated_at_the_length_it_was_trained_with(tmp_path, monkeypatch, capsys):
    """Without the run's config.yaml beside it, a checkpoint's evaluation had cut texts at the default 512 tokens
    whatever the fit used; the trained data.max_length now comes from the checkpoint unless the command gives one."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--data.max_length=48", "--trainer.max_steps=1", "--trainer.limit_val_batches=0"])
    moved = tmp_path / "moved.ckpt"
    shutil.copy(only("runs/text/version_*", tmp_path) / "checkpoints" / "last.ckpt", moved)
    texts = tmp_path / "inputs.txt"
    texts.write_text("[SM 1 2 ]\n")
    capsys.readouterr()
    main(["predict", "--task", "text", "--ckpt_path", str(moved), "--data.predict_path", str(texts)])
    assert "data.max_length=48 as the checkpoint was trained (not 512" in capsys.readouterr().out
    assert "max_length: 48" in (tmp_path / "runs" / "text" / "version_1" / "config.yaml").read_text()
    main(["predict", "--task", "text", "--ckpt_path", str(moved), "--data.predict_path", str(texts),
          "--data.max_length=32"])
    assert "as the checkpoint was trained" not in capsys.readouterr().out
    assert "max_length: 32" in (tmp_path / "runs" / "text" / "version_2" / "config.yaml").read_text()


@pytest.mark.parametrize("argv, nearest", [(["tables"], "test"), (["--task", "image", "fitt"], "fit"),
                                           (["benchmark"], "bench")])
def test_an_unknown_command_is_one_line_naming_every_command(argv, nearest):
    """Lightning's parser had named only fit/validate/test/predict, under the text task the user never gave."""
    with pytest.raises(SystemExit, match=rf"^infomamba: unknown command '{argv[-1]}'; did you mean {nearest}\? "
                                         r"\(commands: fit, validate, test, predict with --task; bench, summary, "
                                         r"diagnose\)$"):
        main(argv)


def test_a_misspelt_key_is_named_with_where_it_was_given_and_the_nearest_option(tmp_path, monkeypatch, capsys):
    """No usage listing of every option: the key, the file that gave it (or the command line), the nearest keys."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["fit", *TEXT, "--model.encoder.mixxer=attention"])
    assert str(stop.value.code).splitlines()[0] == ("infomamba fit --task text: unknown key model.encoder.mixxer on "
                                                    "the command line; did you mean model.encoder.mixer?")
    (tmp_path / "run.yaml").write_text("trainer:\n  max_epochs: 1\ndata:\n  batch_sise: 3\n")
    with pytest.raises(SystemExit) as stop:
        main(["test", "--task", "text", "--config", "run.yaml", "--ckpt_path", "x.ckpt"])
    assert "unknown key data.batch_sise in run.yaml; did you mean data.batch_size" in str(stop.value.code)
    assert "usage:" not in capsys.readouterr().err


@pytest.mark.parametrize("abbreviated, full", [("--trainer.max_epoch=1", "trainer.max_epochs"),
                                                ("--model.head_drop=0.5", "model.head_dropout")])
def test_an_abbreviated_key_is_refused_as_a_misspelt_one(abbreviated, full, tmp_path, monkeypatch):
    """argparse had expanded a unique prefix; the CLI's own reading of the command line (which options it gives over
    a checkpoint's, which limits it sets) knows only full keys, so `test --ckpt_path C --model.head_drop=0.5` had
    its option replaced by the checkpoint's without a word."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=rf"unknown key {abbreviated[2:].split('=')[0]} on the command line; did you "
                                         rf"mean {full}\?"):
        main(["fit", *TEXT, abbreviated])


def test_a_checkpoint_with_hyperparameters_this_version_lacks_is_one_line(tmp_path, monkeypatch, capsys):
    """A checkpoint of a newer version (an encoder option added since) had ended in the usage listing of every
    option, then "Parsing of ckpt_path hyperparameters failed!"."""
    monkeypatch.chdir(tmp_path)
    torch.save({"hyper_parameters": {"encoder": {"dim": 16, "new_option": 1}}}, tmp_path / "newer.ckpt")
    with pytest.raises(SystemExit, match=r"^infomamba test --task text: --ckpt_path newer.ckpt: its model "
                                         r"hyperparameters are not this version's options "
                                         r".*'model.encoder.new_option'"):
        main(["test", "--task", "text", "--ckpt_path", "newer.ckpt"])
    assert "usage:" not in capsys.readouterr().err


def test_a_config_file_that_is_not_yaml_is_named_with_line_and_column(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.yaml").write_text("data:\n  batch_size: [1\nmodel:\n")
    with pytest.raises(SystemExit, match=r"--config broken.yaml: not valid YAML: line 3, column 6: expected ','"):
        main(["fit", *TEXT, "--config", "broken.yaml"])
    with pytest.raises(SystemExit, match="--config missing.yaml: no such file"):
        main(["fit", *TEXT, "--config=missing.yaml"])


def test_unknown_mixer_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="nope"):
        main(["fit", *TEXT, "--model.encoder.mixer=nope", "--trainer.fast_dev_run=true"])


def test_a_bad_mixer_option_is_one_line_naming_it_and_what_is_accepted(tmp_path, monkeypatch):
    """A value the model's constructors reject (here a misspelt mixer option) ends the command with one line, not a
    traceback through LightningCLI and jsonargparse."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["fit", *TEXT, "--model.encoder.mixer_options={k_max: 8, ssm_head: 2}", "--trainer.fast_dev_run=true"])
    message = str(stop.value.code)
    assert "\n" not in message and "invalid configuration" in message
    assert "'ssm_head'" in message and "ssm_heads" in message  # what was given, and what is accepted
    assert not list(tmp_path.glob("runs/text/version_*/checkpoints/*.ckpt"))


def test_missing_data_root_is_named(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="invalid configuration: data.root .*no_such_dir"):
        main(["fit", *TEXT, f"--data.root={tmp_path / 'no_such_dir'}", "--trainer.fast_dev_run=true"])


def test_what_setup_rejects_of_the_data_is_one_line_and_the_failed_run_leaves_no_folder(tmp_path, monkeypatch):
    """An error the data module raises in setup (a missing split, a malformed file) ends the command with one line,
    and the run folder it had claimed, still empty, is taken back with the parents it created (a first run's
    runs/<task>/): the same --run_dir is free once the data is mended."""
    from infomamba.tasks.text.datamodule import TextDataModule

    monkeypatch.chdir(tmp_path)
    setup = TextDataModule.setup

    def broken(self, stage):
        raise ValueError("data/train.csv: line 3 has 7 fields; expected 3")

    monkeypatch.setattr(TextDataModule, "setup", broken)
    with pytest.raises(SystemExit) as stop:
        main(["fit", *TEXT, "--trainer.max_steps=1", "--run_dir=runs/one"])
    assert stop.value.code == "infomamba fit --task text: invalid data: data/train.csv: line 3 has 7 fields; expected 3"
    with pytest.raises(SystemExit):
        main(["fit", *TEXT, "--trainer.max_steps=1"])
    assert not (tmp_path / "runs").exists()  # nor the runs/ and runs/text/ that the first run created
    (tmp_path / "runs" / "text").mkdir(parents=True)  # folders the user made are theirs, empty or not
    with pytest.raises(SystemExit):
        main(["fit", *TEXT, "--trainer.max_steps=1"])
    assert (tmp_path / "runs" / "text").is_dir() and not list(tmp_path.glob("runs/text/*"))
    monkeypatch.setattr(TextDataModule, "setup", setup)
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=0", "--run_dir=runs/one"])
    assert (tmp_path / "runs" / "one" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("command", ["fit", "validate", "test", "predict"])
def test_a_ckpt_path_that_is_no_file_is_one_line_before_anything_is_read(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=rf"^infomamba {command} --task text: --ckpt_path runs/x/last.ckpt is not a"):
        main([command, *TEXT, "--ckpt_path=runs/x/last.ckpt", f"--data.predict_path={tmp_path / 'none.txt'}"])
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["validate", "test", "predict"])
def test_evaluating_without_a_checkpoint_is_refused(tmp_path, monkeypatch, command):
    """Without --ckpt_path the model would be the untrained one its config builds: a table of chance-level metrics
    that looks like a result."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=f"infomamba {command} --task text needs --ckpt_path .*untrained"):
        main([command, *TEXT])
    assert not (tmp_path / "runs").exists()


def test_evaluating_a_run_dir_run_writes_inside_its_folder(tmp_path, monkeypatch):
    """A --run_dir run's config names its logger "" with the folder as version; validate/test/predict with it claim
    their version_N inside that folder, not beside it among other runs."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=0", "--run_dir=exps/one"])
    main(["validate", "--task", "text", "--ckpt_path=exps/one/checkpoints/last.ckpt", "--trainer.limit_val_batches=1"])
    assert (tmp_path / "exps" / "one" / "version_0" / "metrics.csv").is_file()
    assert sorted(p.name for p in (tmp_path / "exps").iterdir()) == ["one"]


def test_cuda_graphs_on_a_cpu_fit_is_one_line_and_leaves_no_run(tmp_path, monkeypatch):
    """The trainer's device is known only when the fit starts (`on_fit_start`): its refusal still ends the command
    with one line, and the run folder it claimed goes with it."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: model.cuda_graphs needs a CUDA device; this "
                                         r"fit runs on cpu \(drop --cuda_graphs"):
        main(["fit", *TEXT, "--cuda_graphs", "--trainer.max_steps=1", "--trainer.accelerator=cpu"])
    assert not list(tmp_path.glob("runs/text/version_*"))


@pytest.mark.parametrize("accelerator, bf16, want", [
    ("auto", True, "bf16-mixed"), ("gpu", True, "bf16-mixed"), ("cuda", True, "bf16-mixed"), ("cpu", True, "32-true"),
    ("auto", False, "32-true"), ("mps", True, "32-true")])
def test_the_default_precision_follows_the_accelerator(accelerator, bf16, want, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: bf16)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert cli.default_precision(accelerator) == want


def test_a_cpu_fit_on_a_gpu_machine_runs_and_records_float32(tmp_path, monkeypatch, capsys):
    """`--trainer.accelerator=cpu` where a bf16 GPU is present: the fit does not take the GPU's bf16-mixed default
    (bf16 autocast on the CPU); its config.yaml records the precision it ran at. A given precision is kept. (The
    GPU is there only where the default is chosen: elsewhere, the data loader would pin memory for it.)"""
    chosen = cli.default_precision

    def on_a_gpu_machine(accelerator):
        with monkeypatch.context() as gpu:
            gpu.setattr(torch.cuda, "is_available", lambda: True)
            gpu.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
            return chosen(accelerator)

    assert on_a_gpu_machine("auto") == "bf16-mixed"
    monkeypatch.setattr(cli, "default_precision", on_a_gpu_machine)
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=0", "--trainer.accelerator=cpu"])
    assert "\n  precision: 32-true\n" in only("runs/text/version_0", tmp_path).joinpath("config.yaml").read_text()
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=0", "--trainer.accelerator=cpu",
          "--trainer.precision=bf16-mixed"])
    assert "\n  precision: bf16-mixed\n" in only("runs/text/version_1", tmp_path).joinpath("config.yaml").read_text()


def test_a_fast_dev_run_writes_nothing(tmp_path, monkeypatch, capsys):
    """Lightning disables checkpoints under fast_dev_run but for save_last's at the end of fit, which wrote last.ckpt
    outside any run folder (the logger is a dummy), beside an empty claimed version_N."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.fast_dev_run=true"])
    assert not list(tmp_path.rglob("*.ckpt")) and not list(tmp_path.glob("runs/text/version_*"))
    assert "fast_dev_run, no checkpoint written" in capsys.readouterr().out


def test_task_selection():
    assert pop_task(["fit", "--task", "asr", "--x=1"]) == ("asr", ["fit", "--x=1"])
    assert pop_task(["fit", "--task=image"]) == ("image", ["fit"])
    assert pop_task(["fit"])[0] == "text"
    with pytest.raises(SystemExit, match="unknown --task"):
        pop_task(["fit", "--task", "video"])


def test_image_fit_on_a_generated_image_folder(tmp_path, monkeypatch):
    from PIL import Image
    import numpy as np

    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("val", 4)):
        for cls in ("cat", "dog"):
            folder = tmp_path / "imgs" / split / cls
            folder.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    monkeypatch.chdir(tmp_path)
    main(["fit", "--task", "image", *TINY, f"--data.root={tmp_path / 'imgs'}", "--data.image_size=16",
          "--data.batch_size=8", "--data.num_workers=0", "--model.patch_size=4", "--trainer.max_epochs=1"])
    run = only("runs/image/version_*", tmp_path)
    metrics = (run / "metrics.csv").read_text()
    assert "val/acc" in metrics and "val/acc5" not in metrics  # a top-5 of 2 classes would always be 1
    assert (run / "checkpoints" / "last.ckpt").is_file()


MIXER_OPTIONS = {"infomamba": "{k_max: 8, d_state: 4, d_concept: 8, chunk: 8}", "linformer": "{max_len: 512}"}


class GradientsReachEveryMixer(Callback):
    """Records, after each training batch, the loss and each block's mixer gradient norm (over the parameters that got
    one) into `seen` (`--trainer.callbacks+=test_cli.GradientsReachEveryMixer`)."""
    seen: list[tuple[float, list[float]]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.seen.append((float(loss), [float(torch.nn.utils.get_total_norm(
            [p.grad for p in block.mixer.parameters() if p.grad is not None]))
            for block in pl_module.encoder.stack.blocks]))


@pytest.mark.parametrize("mixer", __import__("infomamba").list_mixers())
def test_every_mixer_fits_the_text_task(mixer, tmp_path, monkeypatch):
    """One training step of each mixer in the CLI: a finite loss, and a finite, non-zero gradient in every block's
    mixer (the loss reaches each mixer's parameters)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(GradientsReachEveryMixer, "seen", [])
    main(["fit", "--task", "text", "--data.listops_size=32", "--data.batch_size=8", "--model.encoder.dim=16",
          "--model.encoder.depth=2", f"--model.encoder.mixer={mixer}",
          f"--model.encoder.mixer_options={MIXER_OPTIONS.get(mixer, '{}')}", "--trainer.fast_dev_run=true",
          "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
          "--trainer.callbacks+=test_cli.GradientsReachEveryMixer"])
    [(loss, norms)] = GradientsReachEveryMixer.seen
    assert math.isfinite(loss)
    assert len(norms) == 2 and all(math.isfinite(n) and n > 0 for n in norms), norms


@pytest.mark.parametrize("off", [["--trainer.enable_checkpointing=false"], ["--config", "off.yaml"]])
def test_checkpointing_can_be_switched_off(off, tmp_path, monkeypatch):
    """On the command line or in a config file (there Lightning had refused the default ModelCheckpoint)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "off.yaml").write_text("trainer:\n  enable_checkpointing: false\n")
    main(["fit", *TEXT, *off, "--trainer.max_epochs=1", "--trainer.limit_train_batches=1",
          "--trainer.limit_val_batches=1"])
    assert not list(tmp_path.glob("runs/text/version_0/checkpoints/*.ckpt"))


@pytest.mark.parametrize("devices, says", [
    ("0", r"`Trainer\(devices='0'\)` value is not a valid input using cpu accelerator"),
    ("two", r"trainer: `devices` selected with `CPUAccelerator` should be an int > 0\.$")])
def test_a_trainer_setting_lightning_refuses_is_one_line_and_takes_back_the_run_folder(tmp_path, monkeypatch,
                                                                                        devices, says):
    """Lightning's MisconfigurationException (no GPU for accelerator=gpu, devices=0, a strategy's missing package)
    and its TypeError (devices=two) had ended the command with a traceback."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: invalid configuration: " + says):
        main(["fit", *TEXT, "--trainer.accelerator=cpu", f"--trainer.devices={devices}"])
    assert not (tmp_path / "runs").exists()  # the run folder and the runs/text/ it was made in


def test_a_strategy_that_spawns_its_processes_is_one_line(tmp_path, monkeypatch):
    """ddp_spawn pickles the model and the data module into each new process, and the links between them do not
    pickle: the command had ended with multiprocessing's traceback ("Can't pickle local object")."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: invalid configuration: trainer.strategy starts "
                                         r"its processes with spawn \(ddp_spawn\), .* --trainer.strategy=ddp "):
        main(["fit", *TEXT, "--trainer.accelerator=cpu", "--trainer.devices=2", "--trainer.strategy=ddp_spawn"])
    assert not (tmp_path / "runs").exists()


def test_two_runs_started_together_in_one_folder_get_their_own_run_folder(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "infomamba.cli", "fit", *TEXT, "--trainer.max_steps=1",
               "--trainer.limit_val_batches=0"]
    runs = [subprocess.Popen(command, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT) for _ in range(2)]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], [out[-2000:] for out in outputs]
    folders = sorted((tmp_path / "runs" / "text").iterdir())
    assert [f.name for f in folders] == ["version_0", "version_1"]
    assert all((f / "config.yaml").is_file() and (f / "checkpoints" / "last.ckpt").is_file() for f in folders)


def test_fit_ends_with_a_summary_line_and_without_the_known_noise(tmp_path, monkeypatch, capsys, caplog, recwarn):
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"])
    checkpoints = "runs/text/version_0/checkpoints"
    assert re.search(rf"\[infomamba\] fit done in \d+s \(step 2\): best {checkpoints}/best-epoch=0-step=2\.ckpt "
                     rf"\(val/acc=\d\.\d{{4}}\); last {checkpoints}/last\.ckpt", capsys.readouterr().out)

    main(["fit", *TEXT, "--trainer.max_steps=2"])  # stops mid-epoch: validation never runs
    captured = capsys.readouterr()
    assert ("fit done in" in captured.out and "(step 2): no val/acc was logged (no validation ran), so no best "
            "checkpoint; last runs/text/version_1/checkpoints/last.ckpt" in captured.out)
    assert "GPU available" in caplog.text and "Tip:" not in caplog.text
    noise = [str(w.message) for w in recwarn
             if "val/acc" in str(w.message) or any(re.search(q, str(w.message)) for q in QUIET_WARNINGS)]
    assert not noise


COMMENTS_NEED = "jsonargparse prints the config's comments only with ruamel.yaml installed"


def test_compile_is_short_for_model_compile(capsys):
    assert shorthands(["fit", "--compile"]) == ["fit", "--model.compile=true"]
    assert shorthands(["fit", "--compile=reduce-overhead"]) == ["fit", "--model.compile=reduce-overhead"]
    assert shorthands(["fit", "--cuda_graphs"]) == ["fit", "--model.cuda_graphs=true"]
    with pytest.raises(SystemExit) as done:
        main(["fit", "--task", "text", "--compile", "--print_config"])
    assert not done.value.code
    assert "\n  compile: true\n" in capsys.readouterr().out


def test_print_config_is_commented(capsys):
    pytest.importorskip("ruamel.yaml", reason=COMMENTS_NEED)
    with pytest.raises(SystemExit) as done:
        main(["fit", "--task", "text", "--print_config"])
    assert not done.value.code
    assert "# token width D. (type: int, default: 64)" in capsys.readouterr().out


def test_print_config_refuses_an_unregistered_mixer_as_fit_does(capsys):
    """jsonargparse prints before any class is built: `--model.encoder.mixer=foo` had printed a config that fit
    refuses."""
    with pytest.raises(SystemExit) as done:
        main(["fit", "--task", "image", "--model.encoder.mixer=foo", "--print_config"])
    assert str(done.value.code).startswith("infomamba fit --task image: invalid configuration: encoder.mixer='foo' "
                                           "is not registered; available: attention, ")
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("task", ["text", "image", "asr"])
def test_every_model_option_has_help_in_the_printed_config(task, capsys):
    """jsonargparse takes an option's help from the docstring's Args, one argument per line; an argument missing
    there (or sharing a line with another) prints as an empty comment."""
    pytest.importorskip("ruamel.yaml", reason=COMMENTS_NEED)
    with pytest.raises(SystemExit):
        main(["fit", "--task", task, "--print_config"])
    model = capsys.readouterr().out.split("\nmodel:")[1].split("\ndata:")[0]
    assert "#  (type" not in model, [line for line in model.splitlines() if "#  (type" in line]


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_a_commands_help_shows_its_usage_as_typed(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--task", "image", "--help"])
    assert capsys.readouterr().out.startswith(f"usage: infomamba {command} --task image [-c CONFIG]")


def test_an_optimizer_from_the_command_line_says_what_it_replaces(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--optimizer=SGD", "--optimizer.lr=0.1", "--trainer.fast_dev_run=true"])
    out = capsys.readouterr().out
    assert "[infomamba] --optimizer replaces the model's AdamW" in out and "--model.lr" in out
    main(["fit", *TEXT, "--trainer.fast_dev_run=true"])
    assert "the model's AdamW" not in capsys.readouterr().out


def test_a_gloo_process_group_is_left_after_the_run(tmp_path):
    """Left to the interpreter's exit, a gloo group aborted DDP `predict` runs (exit -6) in CI."""
    import torch.distributed as dist

    from infomamba.cli import leave_process_group

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    leave_process_group()
    assert not dist.is_initialized()
    leave_process_group()  # nothing to leave: a no-op


def test_a_checkpoint_of_another_task_or_no_checkpoint_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=0"])
    ckpt = only("runs/text/version_*", tmp_path) / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit, match=rf"^infomamba test --task image: --ckpt_path {ckpt} is a checkpoint of "
                                         r"TextClassifier, not of --task image's model: use --task text$"):
        main(["test", "--task", "image", "--ckpt_path", str(ckpt)])
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    with pytest.raises(SystemExit, match=r"^infomamba predict --task text: --ckpt_path notes.ckpt is not a "
                                         "checkpoint Lightning saved"):
        main(["predict", "--task", "text", "--ckpt_path=notes.ckpt"])


def test_resuming_refuses_a_changed_model_and_names_the_runs_it_passes_over(tmp_path, monkeypatch, capsys):
    """`--ckpt_path last` restores the optimizer and one architecture: a changed model or data option would not act
    or not load, so it is refused; a trainer option (more epochs) is the way to go on."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"])
    (tmp_path / "runs" / "text" / "version_1").mkdir()  # a later run killed before its first checkpoint
    with pytest.raises(SystemExit, match=r"continues runs/text/version_0, whose model and data this command changes "
                                         r"\(model.encoder.depth 1 there, 2 here; model.lr 0.001 there, 0.5 here\)"):
        main(["fit", "--task", "text", "--ckpt_path", "last", "--model.lr=0.5", "--model.encoder.depth=2"])
    main(["fit", "--task", "text", "--ckpt_path", "last", "--trainer.max_epochs=2", "--data.num_workers=0"])
    out = capsys.readouterr().out
    assert "continues runs/text/version_0: the newer version_1 has no checkpoints/last.ckpt" in out
    assert torch.load(tmp_path / "runs/text/version_0/checkpoints/last.ckpt", weights_only=False)["global_step"] == 4


def test_a_limit_of_1_is_one_batch_as_lightning_reads_it(tmp_path, monkeypatch):
    """jsonargparse tried the float of the Trainer's int | float first, so a written 1 was 1.0, the whole epoch."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "limits.yaml").write_text("trainer:\n  limit_val_batches: 1\n")
    main(["fit", *TEXT, "--config", "limits.yaml", "--trainer.max_epochs=1", "--trainer.limit_train_batches", "1"])
    run = only("runs/text/version_*", tmp_path)
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 1  # of 4 batches
    assert "  limit_train_batches: 1\n  limit_val_batches: 1\n" in (run / "config.yaml").read_text()


def test_a_package_a_data_module_needs_is_named_in_one_line(tmp_path, monkeypatch):
    from infomamba.tasks.text.datamodule import TextDataModule

    def missing(self):
        raise ImportError("data.hub_id needs the HF `datasets` package: pip install 'infomamba[hub]'")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(TextDataModule, "num_classes", property(missing))
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: a missing package: data.hub_id needs the HF"):
        main(["fit", *TEXT, "--trainer.fast_dev_run=true"])


def test_infomamba_alone_lists_commands_and_tasks(capsys):
    main([])
    out = capsys.readouterr().out
    assert out.startswith("usage: infomamba {fit,validate,test,predict}") and "tasks: asr, image, text" in out
    main(["--help"])
    assert capsys.readouterr().out == out


def test_a_warning_of_the_project_is_one_line_naming_its_message(tmp_path):
    """A data warning (an unread val.csv) said by the real command before the data's error stops it: one line, not
    Python's path:line form followed by the source line of the rank_zero_warn call."""
    root = tmp_path / "data"
    root.mkdir()
    for name in ("train.csv", "val.csv"):
        (root / name).write_text("words,label\na,pos\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INFOMAMBA_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-m", "infomamba.cli", "fit", "--task", "text", f"--data.root={root}"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 1, child.stderr[-3000:]
    lines = [line for line in child.stderr.splitlines() if "val.csv" in line or "rank_zero_warn" in line]
    assert lines == [f"[infomamba] warning: Text data: ['val.csv'] in {root} not read: validation is carved from the "
                     "training split (data.val_fraction, data.seed)."], child.stderr


def test_a_fit_goes_on_when_the_reader_of_its_output_dies(tmp_path):
    """`infomamba fit ... | tee log` with tee killed: the progress bar and the closing lines meet a broken pipe,
    and the fit still ends normally with its checkpoint."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INFOMAMBA_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    args = ["fit", *TEXT[:-2], "--trainer.max_epochs=2", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1"]
    child = subprocess.Popen([sys.executable, "-m", "infomamba.cli", *args], cwd=tmp_path, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    child.stdout.close()  # the reader is gone before the first line
    _, err = child.communicate(timeout=240)
    assert child.returncode == 0, err.decode()[-3000:]
    ckpt = tmp_path / "runs" / "text" / "version_0" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=False)["global_step"] == 4


def test_the_limits_are_typed_int_first_whatever_union_typing_has_cached():
    """typing caches unions by their members' set: once torchaudio (the asr task) has built Optional[Union[float,
    int]], Optional[Union[int, float]] is that one, float first, and asr runs read a written 1 as 1.0 again."""
    from lightning.pytorch import Trainer
    from lightning.pytorch.cli import LightningArgumentParser

    parser = LightningArgumentParser()
    parser.add_lightning_class_args(Trainer, "trainer")
    for clear in typing._cleanups:
        clear()
    assert Optional[Union[float, int]] == Optional[Union[int, float]]
    assert Optional[Union[int, float]].__args__[0] is float  # the cache as torchaudio leaves it
    read_limits_as_lightning_does(parser)
    assert parser.parse_args(["--trainer.limit_val_batches=1"]).trainer.limit_val_batches == 1
    assert type(parser.parse_args(["--trainer.limit_val_batches=1"]).trainer.limit_val_batches) is int


def test_options_given_with_a_checkpoint_file_win_or_are_refused(tmp_path, monkeypatch, capsys):
    """Lightning puts a --ckpt_path file's hyperparameters over the command line's model options, so that e.g.
    `predict --model.decoder=beam` silently decoded greedily: an option given wins (and is named), one the weights
    fix is refused, and `fit --ckpt_path FILE`, which continues that training, refuses a changed one."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=0"])
    ckpt = str(only("runs/text/version_*", tmp_path) / "checkpoints" / "last.ckpt")
    capsys.readouterr()
    main(["validate", "--task", "text", "--ckpt_path", ckpt, "--model.head_dropout=0.5",
          "--trainer.limit_val_batches=1"])
    out = capsys.readouterr().out
    assert "over the checkpoint's model options: model.head_dropout 0.5 (the checkpoint's: 0.1)" in out
    assert "  head_dropout: 0.5\n" in (tmp_path / "runs" / "text" / "version_1" / "config.yaml").read_text()
    with pytest.raises(SystemExit, match=r"model.encoder.dim 16 there, 32 here\): the weights were trained with them"):
        main(["test", "--task", "text", "--ckpt_path", ckpt, "--model.encoder.dim=32"])
    capsys.readouterr()
    with pytest.raises(SystemExit, match=r"model.lr 0.001 there, 0.5 here\): fit --ckpt_path FILE continues"):
        main(["fit", *TEXT, "--ckpt_path", ckpt, "--model.lr=0.5"])
    config = tmp_path / "runs" / "text" / "version_0" / "config.yaml"  # the fit's data options are not the defaults
    assert (f"this fit starts from {ckpt} with this command's data and trainer options, not those of its run "
            f"({config}); give --config {config}") in capsys.readouterr().out


def test_a_run_that_fails_setting_up_its_model_gives_its_folder_back(tmp_path, monkeypatch):
    """The folder then holds only the config it was given, restated: taken back, so the mended command may claim it
    (it had been refused as an existing run, and --ckpt_path last found no checkpoint in it)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: model.init_from missing.ckpt is not a file"):
        main(["fit", *TEXT, "--trainer.max_steps=1", "--model.init_from=missing.ckpt", "--run_dir=runs/two"])
    assert not (tmp_path / "runs" / "two").exists()
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=0", "--run_dir=runs/two"])
    assert (tmp_path / "runs" / "two" / "checkpoints" / "last.ckpt").is_file()


def test_an_evaluation_covers_the_whole_split_unless_it_limits_it_itself(tmp_path, monkeypatch, capsys):
    """validate/test read the run's config.yaml, whose trainer.limit_val_batches was the fit's: a few batches had
    been scored as if they were the split."""
    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=1"])
    ckpt = str(only("runs/text/version_*", tmp_path) / "checkpoints" / "last.ckpt")
    capsys.readouterr()
    main(["validate", "--task", "text", "--ckpt_path", ckpt])
    out = capsys.readouterr().out
    assert "validate covers the whole split: the run's config.yaml had trainer.limit_val_batches=1" in out
    assert "  limit_val_batches: null\n" in (tmp_path / "runs" / "text" / "version_1" / "config.yaml").read_text()
    main(["validate", "--task", "text", "--ckpt_path", ckpt, "--trainer.limit_val_batches=1"])
    assert "covers the whole split" not in capsys.readouterr().out
    assert "  limit_val_batches: 1\n" in (tmp_path / "runs" / "text" / "version_2" / "config.yaml").read_text()


def test_a_signal_outside_a_training_step_is_one_line_naming_the_folders_taken_back(tmp_path, capsys):
    """Ctrl-C while a tokenizer trained or data loaded had printed a KeyboardInterrupt traceback; a SIGTERM there
    (`Terminated`) ended the process with no word. Other errors are not this function's."""
    from infomamba.cli import Claim, Terminated, stopped_outside_training

    gone, kept = Claim(tmp_path / "gone", tmp_path / "gone"), Claim(tmp_path / "kept", tmp_path / "kept")
    kept.folder.mkdir()
    for err, stopped, code in ((KeyboardInterrupt(), "SIGINT at once, outside a training step or by a second "
                                "Ctrl-C", 130), (Terminated(), "SIGTERM outside a training step", 143)):
        stop = stopped_outside_training(err, "infomamba fit --task text", [gone, None, kept])
        assert stop.code == code
        assert capsys.readouterr().err == (f"infomamba fit --task text: stopped by {stopped}: nothing after the last "
                                           f"checkpoint was saved; took back {gone.folder}, which it had claimed\n")
    assert stopped_outside_training(ValueError("bad"), "infomamba fit --task text", [gone]) is None
    assert stopped_outside_training(Terminated(), "infomamba test --task text", [kept], "test").code == 143
    assert capsys.readouterr().err == (f"infomamba test --task text: stopped by SIGTERM before it finished: what it "
                                       f"wrote is in {kept.folder}\n")


@pytest.mark.parametrize("command", ["test", "predict"])
def test_ctrl_c_during_an_evaluation_says_it_was_interrupted_and_what_was_written(tmp_path, monkeypatch, capsys,
                                                                                   command):
    """It had read as a fit's: "stopped by SIGINT at once, outside a training step or by a second Ctrl-C: nothing after
    the last checkpoint was saved", of a test that had no training step and saves no checkpoint."""
    import os
    import signal

    from infomamba.tasks.text.module import TextClassifier

    monkeypatch.chdir(tmp_path)
    main(["fit", *TEXT, "--trainer.max_steps=1", "--trainer.limit_val_batches=0", "--run_dir=run"])
    (tmp_path / "texts.txt").write_text("[MAX 1 2]\n")
    monkeypatch.setattr(TextClassifier, f"{command}_step", lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGINT))
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([command, "--task", "text", "--ckpt_path", "run/checkpoints/last.ckpt", "--data.predict_path=texts.txt"])
    written = {"test": "metrics", "predict": "predictions"}[command]
    assert stop.value.code == 130 and capsys.readouterr().err.splitlines()[-1] == (
        f"infomamba {command} --task text: stopped by SIGINT before it finished: no {written} were written; took back "
        f"run/version_0, which it had claimed")
    assert not (tmp_path / "run" / "version_0").exists()


def test_a_fit_without_a_logger_runs(tmp_path, monkeypatch):
    """`--trainer.logger=false` had stopped the fit with the learning-rate monitor's traceback (no logger to log to)."""
    monkeypatch.chdir(tmp_path)
    main(["fit", "--task", "text", "--data.listops_size=32", "--data.batch_size=16", "--model.encoder.dim=16",
          "--model.encoder.depth=1", "--trainer.logger=false", "--trainer.max_steps=1", "--trainer.limit_val_batches=1",
          "--trainer.enable_progress_bar=false"])
    assert list(tmp_path.glob("runs/**/last.ckpt"))


def test_ctrl_c_before_a_command_starts_is_one_line_and_130(monkeypatch, capsys):
    """A Ctrl-C that `main` does not handle (while torch and Lightning import, the first seconds)."""
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "main", interrupted)
    monkeypatch.setattr(cli, "start_workers_from_a_fork_server", lambda: None)
    with pytest.raises(SystemExit) as stop:
        cli.run()
    assert stop.value.code == 130 and capsys.readouterr().err == "infomamba: stopped by SIGINT\n"
