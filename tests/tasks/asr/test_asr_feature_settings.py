"""The model's front end reads features of the data's sample rate and mel bins. A fit given data.n_mels alone
stopped in its first batch ("mat1 and mat2 shapes cannot be multiplied"), and a checkpoint moved out of its run
folder was evaluated at the data defaults, 16 kHz and 80 bins, whatever it was trained with (an 8 kHz model then
read 16 kHz features without a word)."""
import json
import shutil
from pathlib import Path

import pytest

from infomamba.cli import main
from tiny_data import TINY_MODEL, write_librispeech


def test_feature_settings_are_checked_in_fit_and_taken_from_the_checkpoint_in_predict(tmp_path, monkeypatch,
                                                                                        capsys):
    write_librispeech(tmp_path / "LibriSpeech", utterances=2)
    monkeypatch.chdir(tmp_path)
    fit = ["fit", "--task", "asr", f"--data.root={tmp_path / 'LibriSpeech'}", "--data.test_splits=[]",
           "--data.batch_size=2", "--data.n_mels=40", "--data.sample_rate=8000", *TINY_MODEL,
           "--trainer.max_steps=1", "--trainer.limit_val_batches=0"]
    with pytest.raises(SystemExit, match=r"^infomamba fit --task asr: data.n_mels=40 but model.n_mels=80: "):
        main(fit)
    assert not list((tmp_path / "runs" / "asr").glob("version_*"))  # the claimed folder taken back
    main([*fit, "--model.n_mels=40"])
    moved = tmp_path / "moved.ckpt"
    shutil.copy(next((tmp_path / "runs" / "asr").glob("version_*/checkpoints/last.ckpt")), moved)
    audio = next((tmp_path / "LibriSpeech" / "dev-clean").rglob("*.flac"))
    capsys.readouterr()
    main(["predict", "--task", "asr", "--ckpt_path", str(moved), f"--data.predict_path={audio}"])
    out = capsys.readouterr().out
    assert "data.sample_rate=8000 as the checkpoint was trained" in out and "data.n_mels=40 as" in out
    rows = Path(out.split("predictions to ")[-1].split()[0]).read_text().splitlines()
    assert [json.loads(row)["audio_filepath"] for row in rows] == [str(audio)]
