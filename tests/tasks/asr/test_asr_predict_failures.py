"""A predict file whose header reads but whose samples do not (NaN audio) gets a row of its own with the error; the
other inputs keep theirs, in input order. It had ended the whole run after every batch ran ("11 predictions but 12
input indices"), or with a TypeError when it was a batch's only input, and no predictions were written."""
import json
import logging

import lightning as L
import numpy as np
import pytest
import soundfile

from infomamba import EncoderConfig
from infomamba.losses import LossWeights
from infomamba.tasks.asr.datamodule import ASRDataModule
from infomamba.tasks.asr.module import CTCSpeechRecognizer
from infomamba.tasks.prediction_writer import JsonLinesPredictionWriter


def predicted_rows(data, out):
    """The rows of predictions.jsonl after `infomamba predict` of a tiny untrained model on `data`."""
    model = CTCSpeechRecognizer(EncoderConfig(dim=16, depth=1, mixer_options={"k_max": 4, "d_state": 4}),
                                LossWeights(use_nce=False)).eval()
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=out,
                        callbacks=[JsonLinesPredictionWriter()])
    trainer.predict(model, datamodule=data, return_predictions=False)
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("batch_size", [1, 3])  # 1: the failed file alone in its batch
def test_a_file_that_fails_to_load_gets_an_error_row_and_the_rest_are_written(tmp_path, batch_size, capsys):
    rng = np.random.default_rng(0)
    names = ["a.wav", "b.wav", "c.wav", "d.wav"]
    for i, name in enumerate(names):
        wav = (0.1 * rng.standard_normal(16000 + 800 * i)).astype(np.float32)
        if name == "c.wav":
            wav[100] = np.nan
        soundfile.write(tmp_path / name, wav, 16000, subtype="FLOAT")
    data = ASRDataModule(predict_path=str(tmp_path), batch_size=batch_size)
    rows = predicted_rows(data, tmp_path / "out")
    assert [row["audio_filepath"].split("/")[-1] for row in rows] == names
    assert [row["index"] for row in rows] == [0, 1, 2, 3]
    failed = rows[2]
    assert failed["text"] is None and "non-finite samples" in failed["error"]
    assert all(isinstance(row["text"], str) and "error" not in row for row in rows[:2] + rows[3:])
    assert "wrote 4 predictions" in capsys.readouterr().out and data.load_failures


def test_inputs_skipped_at_setup_get_an_error_row_at_their_index(tmp_path, capsys):
    """A missing, a non-audio and a too short input were left out of predictions.jsonl: the rows after them took
    their indices (the listing's fifth file came out as index 1), though every input should have its row."""
    rng = np.random.default_rng(0)
    for name in ("a.wav", "e.wav"):
        soundfile.write(tmp_path / name, (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    soundfile.write(tmp_path / "short.wav", np.zeros(10, np.float32), 16000)
    (tmp_path / "text.wav").write_text("not audio")
    names = ["a.wav", "gone.wav", "text.wav", "short.wav", "e.wav"]
    (tmp_path / "inputs.txt").write_text("\n".join(names) + "\n")
    data = ASRDataModule(predict_path=str(tmp_path / "inputs.txt"), batch_size=2)
    rows = predicted_rows(data, tmp_path / "out")
    assert [(row["index"], row["audio_filepath"].split("/")[-1]) for row in rows] == list(enumerate(names))
    errors = {row["audio_filepath"].split("/")[-1]: row.get("error") for row in rows}
    assert "file not found" in errors["gone.wav"] and "Format not recognised" in errors["text.wav"]
    assert "only 10 samples" in errors["short.wav"] and errors["a.wav"] is errors["e.wav"] is None
    assert data.split_stats["predict"]["skipped"] == {"no_audio": 1, "unreadable": 1, "too_short": 1}
    assert "wrote 5 predictions" in capsys.readouterr().out


def test_each_input_that_fails_is_one_line_naming_it_and_its_error(tmp_path, caplog, capsys):
    """An unreadable input was named in three lines (setup's skip examples, the worker's "dropping utterance" and a
    "dropped 1 utterance(s)" count), the file three more times inside libsndfile's message; now one line each, and
    the counts in the summaries."""
    soundfile.write(tmp_path / "a.wav", (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32),
                    16000)
    (tmp_path / "bad.flac").write_text("not audio")
    (tmp_path / "inputs.txt").write_text("a.wav\nbad.flac\ngone.wav\n")
    with caplog.at_level(logging.INFO):
        rows = predicted_rows(ASRDataModule(predict_path=str(tmp_path / "inputs.txt")), tmp_path / "out")
    lines = [r.getMessage() for r in caplog.records] + capsys.readouterr().out.splitlines()
    for name, error in [("bad.flac", "LibsndfileError: Format not recognised"), ("gone.wav", "file not found")]:
        named = [line for line in lines if name in line]
        assert len(named) == 1 and error in named[0] and named[0].count(name) == 1, named
    assert [row.get("error") is None for row in rows] == [True, False, False]
    assert any("2 of them inputs that failed to load" in line for line in lines)


@pytest.mark.parametrize("option", [{"sample_rate": 8000}, {"n_mels": 40}])
def test_data_whose_features_are_not_the_models_is_refused_naming_both(tmp_path, option):
    """An 8 kHz data module fed a 16 kHz model other features without a word (40 bins: a shape error in a batch)."""
    soundfile.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    data = ASRDataModule(predict_path=str(tmp_path / "a.wav"), **option)
    model = CTCSpeechRecognizer(EncoderConfig(dim=16, depth=1, mixer_options={"k_max": 4, "d_state": 4}),
                                LossWeights(use_nce=False))
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    (key, value), = option.items()
    with pytest.raises(ValueError, match=rf"^data.{key}={value} but model.{key}="):
        trainer.predict(model, datamodule=data, return_predictions=False)
