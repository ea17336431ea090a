"""Numeric options of the ASR data and model refused in one line when they are built. They had ended in tracebacks:
data.sample_rate 0 a ZeroDivisionError in the length filter, a negative one torch's hann_window, n_mels 0 a conv2d
error in the first batch, a negative num_workers torch's DataLoader, and a beam_size below 1 no error at all but
an empty transcript for every utterance."""
import pytest

from infomamba import EncoderConfig
from infomamba.tasks.asr.datamodule import ASRDataModule
from infomamba.tasks.asr.module import CTCSpeechRecognizer

TINY = EncoderConfig(dim=16, depth=1, mixer="attention")


@pytest.mark.parametrize(("option", "value", "expected"), [
    ("sample_rate", 0, "> 0"), ("sample_rate", -16000, "> 0"), ("n_mels", 0, "> 0"), ("num_workers", -1, ">= 0"),
    ("subsampling", 0, ">= 1"), ("val_fraction", 1.0, r"in \[0, 1\)"),
    ("batch_size", 0, r">= 1 \(or give max_frames\)")])
def test_data_options_out_of_range_are_refused_naming_the_option(tmp_path, option, value, expected):
    with pytest.raises(ValueError, match=rf"^data: {option} must be {expected}, got {value}$"):
        ASRDataModule(root=str(tmp_path), **{option: value})


@pytest.mark.parametrize(("options", "message"), [
    ({"n_mels": 0}, "model: n_mels must be > 0, got 0"),
    ({"sample_rate": -8000}, "model: sample_rate must be > 0, got -8000"),
    ({"decoder": "beam", "beam_size": 0}, "model: beam_size must be >= 1, got 0"),
    ({"decoder": "beam", "beam_size": -3}, "model: beam_size must be >= 1, got -3")])
def test_model_options_out_of_range_are_refused_naming_the_option(options, message):
    with pytest.raises(ValueError, match=rf"^{message}$"):
        CTCSpeechRecognizer(encoder=TINY, **options)
