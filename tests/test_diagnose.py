"""`infomamba diagnose` on a tiny trained text checkpoint (CPU): the report files exist and hold a finite
ε_exp for every attention layer, head and m; agreement with a second checkpoint; a clear refusal for a
model with nothing to diagnose."""
import json
import shutil
import types
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch

from infomamba import EncoderConfig
from infomamba.cli import main as cli_main
from infomamba import diagnose as diagnose_module
from infomamba.diagnose import batches, loader_for
from infomamba.diagnose import diagnose as main_report
from infomamba.diagnose import main
from infomamba.diagnostics.exponential_fit import DEFAULT_ORDERS

WORDS = {"pos": ["great", "wonderful", "lovely", "superb", "moving"],
         "neg": ["awful", "terrible", "boring", "dull", "flat"]}
FILLER = ["the", "film", "was", "and", "plot", "acting", "really", "quite"]


def write_reviews(root: Path, rows: int = 32) -> None:
    """train.csv / test.csv of 20-word reviews, long enough for kernels over 16 lags."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for split, n in (("train", rows), ("test", rows // 4)):
        lines = ["text,label"]
        for i in range(n):
            label = ("pos", "neg")[i % 2]
            words = [str(w) for w in rng.choice(FILLER, size=16)] + [str(w) for w in rng.choice(WORDS[label], size=4)]
            rng.shuffle(words)
            lines.append(f"{' '.join(words)},{label}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")


def test_diagnose_a_tiny_attention_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INFOMAMBA_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "reviews"
    write_reviews(data)
    cli_main(["fit", "--task", "text", f"--data.root={data}", "--data.tokenizer=bpe", "--data.vocab_size=60",
              "--data.batch_size=8", "--model.encoder.dim=16", "--model.encoder.depth=2",
              "--model.encoder.mixer=attention", "--model.encoder.mixer_options={heads: 2}",
              "--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1",
              "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"])
    run = tmp_path / "runs" / "text" / "version_0"
    ckpt = run / "checkpoints" / "last.ckpt"
    other = next((run / "checkpoints").glob("best-*.ckpt"))

    main(["--task", "text", "--ckpt_path", str(ckpt), "--horizon", "16", "--batches", "2", "--split", "test",
          f"--root={data}", "--data.batch_size=4", "--other_ckpt", str(other)])
    out = run / "diagnostics" / "last"
    assert f"report in {out}" in capsys.readouterr().out
    for name in ("diagnostics.json", "diagnostics.md", "eps_exp.png", "example_kernel.png"):
        assert (out / name).is_file(), name
    report = json.loads((out / "diagnostics.json").read_text())
    assert report["orders"] == list(DEFAULT_ORDERS) and report["batches"] == 2 and report["samples"] == 8
    assert [layer["index"] for layer in report["attention"]] == [0, 1] and report["ssm"] == []
    for layer in report["attention"]:
        assert layer["heads"] == 2 and layer["kernels"] > 0
        for m in DEFAULT_ORDERS:
            per_head = layer["eps_exp"][str(m)]
            assert len(per_head) == 2 and all(e is not None and 0 <= e <= 1 for e in per_head), (m, per_head)
        assert all(0 < d <= 1 for d in layer["diagonal_mass"])
        assert len(layer["example"]["kernel"]) == 16
    agreement = report["agreement"]
    assert agreement["split"] == "test" and agreement["n"] == 8
    assert agreement["both_right"] + agreement["both_wrong"] + agreement["disagree"] == pytest.approx(1.0)
    text = (out / "diagnostics.md").read_text()
    assert "| `encoder.stack.blocks.1.mixer` | 1 |" in text and "ε_exp m=8" in text


def linformer_checkpoint(path: Path, vocab_size: int, mixer: str = "linformer", options=None) -> Path:
    """A checkpoint of an untrained text classifier (Linformer: no attention or SSM layer) at `path`, naming its
    model's class as the checkpoints of a fit do."""
    from infomamba.tasks.registry import class_path
    from infomamba.tasks.text.module import TextClassifier

    encoder = EncoderConfig(dim=16, depth=1, mixer=mixer, mixer_options=options or {"proj_len": 4})
    model = TextClassifier(num_classes=2, vocab_size=vocab_size, encoder=encoder)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": lightning.__version__,
                "infomamba_module": class_path(TextClassifier)}, path)
    return path


def test_agreement_batches_compare_the_same_samples_across_batch_sizes(tmp_path, monkeypatch):
    """One model saved in two runs whose configs batch the 8 test reviews by 8 and by 4: --agreement_batches 1
    compares the samples of the first run's first batch in both directions, so the model agrees with itself on
    every one (the other run reads as many samples, not batches)."""
    monkeypatch.setenv("INFOMAMBA_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "reviews"
    write_reviews(data)
    torch.manual_seed(0)
    model = linformer_checkpoint(tmp_path / "model.ckpt", vocab_size=258)  # the byte tokenizer's ids
    ckpt = {}
    for batch_size in (8, 4):
        run = tmp_path / f"batch{batch_size}"
        run.mkdir()
        (run / "config.yaml").write_text(f"data:\n  root: {data}\n  tokenizer: bytes\n  batch_size: {batch_size}\n")
        ckpt[batch_size] = Path(shutil.copy(model, run / "model.ckpt"))
    for mine, other in ((8, 4), (4, 8)):
        report = main_report(["--task", "text", "--ckpt_path", str(ckpt[mine]), "--other_ckpt", str(ckpt[other]),
                              "--agreement_batches", "1", "--device", "cpu"])
        assert report["agreement"]["n"] == mine
        assert report["agreement"]["same_prediction"] == 1.0
    with pytest.raises(SystemExit, match="--agreement_batches 0: give at least 1 batch"):
        main_report(["--task", "text", "--ckpt_path", str(ckpt[8]), "--other_ckpt", str(ckpt[4]),
                     "--agreement_batches", "0"])


def test_a_model_with_nothing_to_diagnose_is_refused(tmp_path):
    ckpt = linformer_checkpoint(tmp_path / "linformer.ckpt", vocab_size=10)
    with pytest.raises(SystemExit, match="has no attention or SSM layer to diagnose"):
        main(["--task", "text", "--ckpt_path", str(ckpt)])
    with pytest.raises(SystemExit, match="horizon of at least 16"):
        main(["--task", "text", "--ckpt_path", str(ckpt), "--horizon", "8"])


def test_mistakes_end_with_one_line(tmp_path, capsys):
    """A checkpoint of another task's model (as --ckpt_path or --other_ckpt), a folder, a file that is no
    checkpoint, a malformed --orders / --batches or a device this machine lacks: one line, before any data is read
    (they were tracebacks: load_state_dict's, int()'s, torch.device's)."""
    ckpt = linformer_checkpoint(tmp_path / "text.ckpt", vocab_size=10)
    image = tmp_path / "image.ckpt"
    torch.save({"infomamba_module": "infomamba.tasks.image.module:ImageClassifier"}, image)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    text = ["--task", "text", "--ckpt_path", str(ckpt)]
    for argv, message in (
            (["--task", "image", "--ckpt_path", str(ckpt)],
             f"--ckpt_path {ckpt} is a checkpoint of TextClassifier, not of --task image's model: use --task text"),
            (text + ["--other_ckpt", str(image)],
             f"--other_ckpt {image} is a checkpoint of ImageClassifier, not of --task text's model: use --task image"),
            (["--task", "text", "--ckpt_path", str(tmp_path)], f"--ckpt_path {tmp_path}: a folder"),
            (text + ["--other_ckpt", str(tmp_path / "absent.ckpt")], "absent.ckpt: no such file"),
            (["--task", "text", "--ckpt_path", str(tmp_path / "notes.txt")], "is not a checkpoint Lightning saved"),
            (text + ["--device", "gpu"], "--device gpu: not a device")):
        with pytest.raises(SystemExit, match=message):
            main(argv)
    for argv, message in ((["--orders", "1,a"], "'1,a': give comma-separated whole numbers, e.g. 1,2,4,8"),
                          (["--batches", "0"], "--batches: 0: give at least 1"),
                          (["--max_kernels", "-3"], "--max_kernels: -3: give at least 1")):
        with pytest.raises(SystemExit):
            main(text + argv)
        assert capsys.readouterr().err.splitlines()[-1].endswith(message)


def test_the_report_goes_to_the_run_and_never_into_the_data(tmp_path, monkeypatch):
    """--out in (or at) a run's data folder, or on a file, is refused; by default the report goes to the
    checkpoint's run, also when --config names a config.yaml elsewhere (it went beside that config)."""
    monkeypatch.setenv("INFOMAMBA_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "reviews"
    write_reviews(data)
    elsewhere = tmp_path / "configs"
    elsewhere.mkdir()
    config = elsewhere / "config.yaml"
    config.write_text(f"data:\n  root: {data}\n  tokenizer: bytes\n  batch_size: 8\n")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    ckpt = linformer_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", 258, "attention", {"heads": 2})
    argv = ["--task", "text", "--ckpt_path", str(ckpt), "--config", str(config), "--horizon", "16",
            "--batches", "1", "--device", "cpu"]
    for out in (data, data / "diagnostics"):
        with pytest.raises(SystemExit, match=f"--out {out} lies in the data folder {data}"):
            main(argv + ["--out", str(out)])
    with pytest.raises(SystemExit, match="lies in the data folder"):
        main(argv + ["--root", str(tmp_path), "--out", str(tmp_path / "diagnostics")])
    with pytest.raises(SystemExit, match="is a file; give a folder"):
        main(argv + ["--out", str(config)])
    assert sorted(p.name for p in data.iterdir()) == ["test.csv", "train.csv"]
    main(argv)
    assert (tmp_path / "run" / "diagnostics" / "last" / "diagnostics.json").is_file()
    assert not (elsewhere / "diagnostics").exists()


def test_ctrl_c_ends_with_one_line_and_130(monkeypatch, capsys):
    def interrupted(argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(diagnose_module, "diagnose", interrupted)
    try:
        with pytest.raises(SystemExit) as stop:
            main(["--ckpt_path", "x.ckpt"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C ended diagnose with a traceback")
    assert stop.value.code == 130
    assert capsys.readouterr().err == "diagnose: interrupted; no report written\n"


class SpeechLikeData:
    """A data module with two named test splits (as speech's test-synth and test-asterisk)."""
    test_split_names = ["synth", "real"]

    def prepare_data(self):
        pass

    def setup(self, stage):
        pass

    def test_dataloader(self):
        return [["synth batch"], ["real batch"]]


def test_of_several_splits_the_report_names_the_one_read(capsys):
    """The first of several test splits is read, named ("test (synth)") and said so with how to pick another; the
    other run reads the split of that name, and one it lacks is refused (only the first was read, as "test")."""
    assert loader_for(SpeechLikeData(), "test") == (["synth batch"], "test", "synth")
    assert capsys.readouterr().out == ("[diagnose] the test data holds 2 splits (synth, real): reading synth; "
                                       "another with --data.test_splits=[NAME]\n")
    assert loader_for(SpeechLikeData(), "test", name="real") == (["real batch"], "test", "real")
    with pytest.raises(SystemExit, match="has no split other"):
        loader_for(SpeechLikeData(), "test", name="other")
    assert diagnose_module.split_label("test", "synth") == "test (synth)"


def test_a_pass_over_the_data_says_what_it_reads_and_how_far_it_got(monkeypatch, capsys):
    """One line up front, then one every PROGRESS_EVERY seconds; a batch the data module drops (None) is
    skipped (it was a TypeError)."""
    monkeypatch.setattr(diagnose_module, "PROGRESS_EVERY", 0.0)
    data = types.SimpleNamespace(on_before_batch_transfer=lambda batch, i: batch,
                                 on_after_batch_transfer=lambda batch, i: batch)
    loader = [{"x": torch.zeros(1)}, None, {"x": torch.zeros(1)}, {"x": torch.zeros(1)}]
    got = list(batches(data, loader, torch.device("cpu"), "x", 2, "kernels on the val split"))
    assert len(got) == 2
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[diagnose] kernels on the val split (2 batches)"
    assert [line.split(",")[0] for line in lines[1:]] == ["[diagnose] kernels on the val split: batch 1 of 2",
                                                          "[diagnose] kernels on the val split: batch 2 of 2"]


def test_a_pass_stopped_at_a_number_of_samples_does_not_count_the_splits_batches(monkeypatch, capsys):
    """--other_ckpt reads the first N samples of its split: the line had read "its first 7 samples (1429 batches
    in the split)", as if it read them all; a pass of one batch says "1 batch"."""
    monkeypatch.setattr(diagnose_module, "PROGRESS_EVERY", 0.0)
    data = types.SimpleNamespace(on_before_batch_transfer=lambda batch, i: batch,
                                 on_after_batch_transfer=lambda batch, i: batch)
    loader = [{"x": torch.zeros(1)}] * 3
    next(batches(data, loader, torch.device("cpu"), "x", None, "agreement, its first 7 samples", counted=False))
    assert capsys.readouterr().out.splitlines() == ["[diagnose] agreement, its first 7 samples"]
    list(batches(data, loader, torch.device("cpu"), "x", 1, "agreement"))
    assert capsys.readouterr().out.splitlines()[0] == "[diagnose] agreement (1 batch)"
