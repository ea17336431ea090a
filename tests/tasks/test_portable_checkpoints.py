"""A trained model loads from its checkpoint alone: sizes are hyperparameters and the tokenizer (text) or
vocabulary (speech) travels in the checkpoint, the model's and the data module's state. After a tiny fit, the
data and the tokenizer caches are deleted, and a fresh process predicts with `load_from_checkpoint`, and
`infomamba predict` again, exactly what `infomamba predict` wrote with the data present."""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infomamba.cli import main
from tiny_data import TINY_MODEL, write_librispeech, write_sentiment_csv

FEW_STEPS = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1"]
# Every run on CPU, like the library calls compared with it: on a GPU the CLI would run in bf16 autocast.
CPU = "--trainer.accelerator=cpu"


def cli_predictions(args: list[str], capsys) -> list[dict]:
    main(["predict", *args, CPU])
    written = Path(capsys.readouterr().out.split("predictions to ")[-1].split()[0])
    return [json.loads(line) for line in written.read_text().splitlines()]


def fresh_python(code: str, *args: str) -> dict:
    """Run `code` in a new interpreter (nothing of the training process left) and return its JSON output."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


PREDICT_TEXTS = """
import json, sys
from infomamba.tasks.text.module import TextClassifier
model = TextClassifier.load_from_checkpoint(sys.argv[1], map_location="cpu")
rows = model.predict_texts(sys.argv[2:])
print(json.dumps({"rows": rows, "kind": model.tokenizer.kind,
                  "datamodule": "infomamba.tasks.text.datamodule" in sys.modules}))
"""


def test_text_checkpoint_predicts_raw_strings_without_its_data(tmp_path, monkeypatch, capsys):
    data = tmp_path / "reviews"
    write_sentiment_csv(data)
    monkeypatch.chdir(tmp_path)
    args = ["--task", "text", f"--data.root={data}", "--data.tokenizer=bpe", "--data.vocab_size=60",
            "--data.batch_size=8", *TINY_MODEL]
    main(["fit", *args, *FEW_STEPS, CPU])
    ckpt = tmp_path / "runs" / "text" / "version_0" / "checkpoints" / "last.ckpt"
    texts = ["a great superb film", "an awful dull film<br />really", "lovely"]
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(texts) + "\n")
    expected = cli_predictions(["--task", "text", "--ckpt_path", str(ckpt), f"--data.predict_path={inputs}"], capsys)
    shutil.rmtree(data)
    shutil.rmtree(os.environ["INFOMAMBA_CACHE"])  # the data card and the trained tokenizer

    again = cli_predictions(["--task", "text", "--ckpt_path", str(ckpt), f"--data.predict_path={inputs}"], capsys)
    assert again == expected
    got = fresh_python(PREDICT_TEXTS, str(ckpt), *texts)
    assert got["kind"] == "bpe" and not got["datamodule"]
    by_text = {row["text"]: row for row in expected}
    assert [r["text"] for r in got["rows"]] == texts
    for row, cleaned in zip(got["rows"], ["a great superb film", "an awful dull film really", "lovely"]):
        assert row["label"] == by_text[cleaned]["label"] and row["label"] in ("neg", "pos")
        assert row["score"] == pytest.approx(by_text[cleaned]["score"], abs=1e-4)


TRANSCRIBE = """
import json, sys
import soundfile
from infomamba.tasks.asr.module import CTCSpeechRecognizer
model = CTCSpeechRecognizer.load_from_checkpoint(sys.argv[1], map_location="cpu")
wav, rate = soundfile.read(sys.argv[2], dtype="float32")
texts = model.transcribe([sys.argv[2], wav])
assert model.double().transcribe([wav]) == texts[1:]  # the features follow the model's dtype
print(json.dumps({"texts": texts, "vocab": type(model.vocab).__name__,
                  "size": len(model.vocab), "roundtrip": model.vocab.decode(model.vocab.encode("ALPHA BRAVO")),
                  "datamodule": "infomamba.tasks.asr.datamodule" in sys.modules}))
"""


def test_asr_checkpoint_transcribes_without_its_data(tmp_path, monkeypatch, capsys):
    write_librispeech(tmp_path / "LibriSpeech", utterances=3)
    (tmp_path / "inputs").mkdir()
    audio = tmp_path / "inputs" / "one.flac"
    shutil.copy(next((tmp_path / "LibriSpeech" / "dev-clean").rglob("*.flac")), audio)
    monkeypatch.chdir(tmp_path)
    args = ["--task", "asr", f"--data.root={tmp_path / 'LibriSpeech'}", "--data.test_splits=[]",
            "--data.batch_size=3", "--data.vocab=bpe", "--data.vocab_size=40",
            f"--data.cache_dir={tmp_path / 'vocab_cache'}", *TINY_MODEL]
    main(["fit", *args, *FEW_STEPS, CPU])
    ckpt = tmp_path / "runs" / "asr" / "version_0" / "checkpoints" / "last.ckpt"
    main(["test", "--task", "asr", "--ckpt_path", str(ckpt), "--data.test_splits=[dev-clean]", CPU])
    table = capsys.readouterr().out
    assert "test/dev-clean/wer" in table and not re.search(r"test/wer\b", table)  # each split named, none merged
    expected = cli_predictions(["--task", "asr", "--ckpt_path", str(ckpt), f"--data.predict_path={audio.parent}"],
                               capsys)
    shutil.rmtree(tmp_path / "LibriSpeech")
    shutil.rmtree(tmp_path / "vocab_cache")

    again = cli_predictions(["--task", "asr", "--ckpt_path", str(ckpt), f"--data.predict_path={audio.parent}"], capsys)
    assert again == expected

    got = fresh_python(TRANSCRIBE, str(ckpt), str(audio))
    assert got["vocab"] == "SubwordVocab" and got["size"] <= 40 and got["roundtrip"] == "ALPHA BRAVO"
    assert not got["datamodule"]
    assert got["texts"] == [expected[0]["text"]] * 2


def test_text_evaluation_encodes_with_the_checkpoints_tokenizer_whatever_the_data_settings(tmp_path, monkeypatch):
    """`test` with data.* settings that would build another tokenizer (here bytes instead of the trained bpe) still
    scores the checkpoint as trained: the model's sizes and the data's tokenizer come from the checkpoint."""
    data = tmp_path / "reviews"
    write_sentiment_csv(data)
    monkeypatch.chdir(tmp_path)
    main(["fit", "--task", "text", f"--data.root={data}", "--data.vocab_size=60", "--data.batch_size=8", *TINY_MODEL,
          *FEW_STEPS, CPU])
    ckpt = tmp_path / "runs" / "text" / "version_0" / "checkpoints" / "last.ckpt"

    def test_loss(run: str, *overrides: str) -> float:
        """From the run's metrics.csv: the printed table's layout depends on whether `rich` is installed."""
        main(["test", "--task", "text", "--ckpt_path", str(ckpt), f"--run_dir={run}", *overrides, CPU])
        return float(next(csv.DictReader((tmp_path / run / "metrics.csv").read_text().splitlines()))["test/loss"])

    as_trained = test_loss("as_trained")
    with pytest.warns(UserWarning, match=r"data.tokenizer=bytes is not the checkpoint's tokenizer \(bpe\)"):
        assert test_loss("bytes", "--data.tokenizer=bytes") == as_trained
