"""What each stage reads and writes: test reads only the test split, predict no data file at all (the
tokenizer and class names come from the data card in the user cache), and fit, test and predict through
the real CLI leave the data folder exactly as it was."""

import contextlib
import json
import os
import sys
from pathlib import Path

import pytest

from infomamba.cli import main
from infomamba.tasks.text.datamodule import TextDataModule
from tiny_data import TINY_MODEL, write_sentiment_csv

_opened: list[str] | None = None


def _record_open(event: str, args: tuple) -> None:
    if event == "open" and _opened is not None and isinstance(args[0], (str, os.PathLike)):
        _opened.append(os.path.abspath(args[0]))


sys.addaudithook(_record_open)  # permanent by design of audit hooks; records only inside `opened_files`


@contextlib.contextmanager
def opened_files():
    """Every file path Python opens inside the block (pandas' csv reader included)."""
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def data_files_opened(opened: list[str], data: Path) -> set[str]:
    return {Path(p).name for p in opened if Path(p).is_relative_to(data)}


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``folder`` (and the folder itself): size and modification time in ns."""
    entries = [folder, *folder.rglob("*")]
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in entries}


def test_test_and_predict_stages_read_only_what_they_need(tmp_path):
    data = tmp_path / "reviews"
    write_sentiment_csv(data)
    fitted = TextDataModule(root=str(data), vocab_size=60)
    fitted.setup("fit")
    predict = tmp_path / "new.txt"
    predict.write_text("a great film\n")

    with opened_files() as opened:
        dm = TextDataModule(root=str(data), vocab_size=60, predict_path=str(predict))
        assert dm.class_names == ["neg", "pos"]
        assert dm.text_tokenizer.to_json() == fitted.text_tokenizer.to_json()
        dm.setup("predict")
        assert next(iter(dm.predict_dataloader()))["texts"] == ["a great film"]
    assert data_files_opened(opened, data) == set()

    with opened_files() as opened:
        dm = TextDataModule(root=str(data), vocab_size=60)
        dm.setup("test")
        assert len(dm.test_dataset) == 12 and dm.train_dataset is None
    assert data_files_opened(opened, data) == {"test.csv"}

    with (data / "train.csv").open("a") as f:  # changed training data: the card no longer applies
        f.write("a lovely new film,pos\n")
    with opened_files() as opened:
        TextDataModule(root=str(data), vocab_size=60).setup("test")
    assert "train.csv" in data_files_opened(opened, data)


def cli_predictions(args: list[str], capsys) -> list[dict]:
    main(["predict", *args])
    written = Path(capsys.readouterr().out.split("predictions to ")[-1].split()[0])
    return [json.loads(line) for line in written.read_text().splitlines()]


def test_cli_runs_leave_the_data_untouched_and_predict_reads_no_training_file(tmp_path, monkeypatch, capsys):
    data = tmp_path / "reviews"
    write_sentiment_csv(data)
    before = snapshot(data)
    monkeypatch.chdir(tmp_path)
    main(["fit", "--task", "text", f"--data.root={data}", "--data.tokenizer=bpe", "--data.vocab_size=60",
          "--data.batch_size=8", *TINY_MODEL, "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
          "--trainer.limit_val_batches=1"])
    cache = Path(os.environ["INFOMAMBA_CACHE"])
    assert len(list(cache.glob("tokenizers/bpe-60-*/tokenizer.json"))) == 1
    ckpt = tmp_path / "runs" / "text" / "version_0" / "checkpoints" / "last.ckpt"

    with opened_files() as opened:
        main(["test", "--task", "text", "--ckpt_path", str(ckpt), "--trainer.limit_test_batches=1"])
    assert data_files_opened(opened, data) == {"test.csv"}

    inputs = tmp_path / "inputs.txt"
    inputs.write_text("a great superb film\nan awful dull film\n")
    with opened_files() as opened:
        rows = cli_predictions(["--task", "text", "--ckpt_path", str(ckpt), f"--data.predict_path={inputs}"], capsys)
    assert data_files_opened(opened, data) == set()
    assert sorted(r["text"] for r in rows) == ["a great superb film", "an awful dull film"]

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with opened_files() as opened, pytest.raises((ValueError, SystemExit), match=r"empty.txt holds no text"):
        main(["predict", "--task", "text", "--ckpt_path", str(ckpt), f"--data.predict_path={empty}"])
    assert data_files_opened(opened, data) == set()
    assert snapshot(data) == before
