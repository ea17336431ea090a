"""Bad input to the text task's commands ends in one line naming the file and option, never a traceback."""
import json
import re
from pathlib import Path

import pytest

from infomamba.cli import main

TINY = ["--task", "text", "--data.listops_size=48", "--data.batch_size=16", "--model.encoder.dim=16",
        "--model.encoder.depth=1", "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8}",
        "--trainer.enable_progress_bar=false", "--trainer.num_sanity_val_steps=0",
        "--trainer.enable_model_summary=false", "--trainer.max_steps=1"]


@pytest.fixture
def checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    main(["fit", *TINY, "--run_dir", "fit"])
    return tmp_path / "fit" / "checkpoints" / "last.ckpt"


def test_unreadable_predict_inputs_are_named_with_their_line(checkpoint, tmp_path):
    """A ValueError raised from the decoder's had reached the user as the bare cause: "'utf-8' codec can't decode
    byte 0xff in position 33", naming neither the file nor the line."""
    bad = {"bad.csv": b"text\ngood\n\xff bad\n", "bad.jsonl": b'{"text": "good"}\n{"text": bad}\n',
           "bad.parquet": b"not parquet"}
    said = {"bad.csv": r"line 3 is not UTF-8 \(byte 0xff\)", "bad.jsonl": "line 2 is not a JSON record",
            "bad.parquet": "not a readable parquet file"}
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(SystemExit, match=rf"^infomamba predict --task text: invalid configuration: "
                                             rf"data.predict_path \S*{name}: {said[name]}"):
            main(["predict", "--task", "text", "--ckpt_path", str(checkpoint), "--data.predict_path", name])


def test_a_predict_line_that_is_not_utf8_costs_that_line_alone(checkpoint, tmp_path, capsys):
    """The whole file had been refused for one stray byte ("line 2 is not UTF-8"), nothing predicted."""
    (tmp_path / "mixed.txt").write_bytes(b"good\n\xff\xfe bad\n[MAX 1 2]\n")
    with pytest.warns(UserWarning, match=r"mixed.txt: skipped 1 of 3 lines, not UTF-8: line 2 \(byte 0xff\)"):
        main(["predict", "--task", "text", "--ckpt_path", str(checkpoint), "--data.predict_path", "mixed.txt",
              "--trainer.enable_progress_bar=false"])
    written = re.search(r"wrote 2 predictions to (\S+)", capsys.readouterr().out)
    rows = [json.loads(line) for line in Path(written[1]).read_text().splitlines()]
    assert [(row["index"], row["text"]) for row in rows] == [(0, "good"), (2, "[MAX 1 2]")]


def test_a_truncated_init_from_is_refused_in_one_line(checkpoint, tmp_path):
    """It had been a 44-line traceback from torch's zip reader."""
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(SystemExit, match=rf"^infomamba fit --task text: model.init_from {truncated} is not a "
                                         r"checkpoint Lightning saved \(torch.load: RuntimeError\)$"):
        main(["fit", *TINY, "--model.init_from", str(truncated)])


def test_a_token_budget_below_the_longest_text_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=r"^infomamba fit --task text: invalid data: data.max_tokens=4 is smaller "
                                         r"than the longest sample \(\d+ tokens\)"):
        main(["fit", *TINY, "--data.max_tokens=4"])


@pytest.mark.parametrize("setting, said", [
    ("gone/tokenizer.ckpt", r"data.tokenizer gone/tokenizer.ckpt does not exist \(a tokenizer file"),
    ("bpe2", r"data.tokenizer='bpe2' is not one of bytes, bpe, wordpiece or a tokenizer file; did you mean bpe\?"),
])
def test_a_tokenizer_setting_that_is_neither_kind_nor_file_is_named(tmp_path, monkeypatch, setting, said):
    """Both had been "a missing package: ... needs pip install transformers"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("text,label\n" + "".join(f"text number {i},{i % 2}\n" for i in range(40)))
    with pytest.raises(SystemExit, match=rf"^infomamba fit --task text: invalid configuration: {said}"):
        main(["fit", *TINY, "--data.root", "data.csv", "--data.tokenizer", setting])
