"""A mixer of bounded length (VMI-SA's and Linformer's `max_len`) against the utterances: the fit had stopped in its
first batch longer than max_len ("vmisa built for max_len=... got a sequence of ... tokens", a traceback)."""
import pytest

from infomamba.cli import main
from tiny_data import TINY_MODEL, write_librispeech


def test_utterances_longer_than_the_mixers_max_len_are_refused_before_the_first_batch(tmp_path, monkeypatch):
    write_librispeech(tmp_path / "LibriSpeech", utterances=2)  # 1.2 s each: 121 frames, 31 after x4 subsampling
    monkeypatch.chdir(tmp_path)
    fit = ["fit", "--task", "asr", f"--data.root={tmp_path / 'LibriSpeech'}", "--data.test_splits=[]",
           "--data.batch_size=2", *TINY_MODEL, "--model.encoder.mixer=vmisa", "--trainer.max_steps=1",
           "--trainer.limit_val_batches=1"]
    with pytest.raises(SystemExit, match=r"^infomamba fit --task asr: the vmisa mixer's max_len=30 is shorter than "
                                         r"the longest utterance \(31 encoder frames after x4 subsampling\): set "
                                         r"max_len >= 31 in model.encoder.mixer_options"):
        main([*fit, "--model.encoder.mixer_options={max_len: 30}"])
    main([*fit, "--model.encoder.mixer_options={max_len: 31}"])
    assert list((tmp_path / "runs" / "asr").glob("version_*/checkpoints/last.ckpt"))
