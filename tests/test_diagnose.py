"""`infomamba diagnose` on a tiny trained text checkpoint (CPU): the report files exist and hold a finite
ε_exp for every attention layer, head and m; agreement with a second checkpoint; a clear refusal for a
model with nothing to diagnose."""
import json
import shutil
from pathlib import Path

import lightning
import numpy as np
import pytest
import torch

from infomamba import EncoderConfig
from infomamba.cli import main as cli_main
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


def linformer_checkpoint(path: Path, vocab_size: int) -> Path:
    """A checkpoint of an untrained text classifier (Linformer: no attention or SSM layer) at `path`."""
    from infomamba.tasks.text.module import TextClassifier

    model = TextClassifier(num_classes=2, vocab_size=vocab_size,
                           encoder=EncoderConfig(dim=16, depth=1, mixer="linformer", mixer_options={"proj_len": 4}))
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": lightning.__version__}, path)
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
