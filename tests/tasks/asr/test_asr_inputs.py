"""Prediction inputs people have: MP3 and Opus files are audio (libsndfile reads them), in a folder or alone; a
single file of an audio format not listed is a one-line error naming it, not a UnicodeDecodeError from reading it
as a list file."""

import numpy as np
import pytest
import soundfile

from infomamba.tasks.asr.audio import load_audio
from infomamba.tasks.asr.sources import predict_files

TONE = (0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)


def write_compressed(folder):
    """A 440 Hz second as MP3 (16 kHz) and as Ogg Opus (48 kHz, Opus's only decoding rate), beside a WAV."""
    soundfile.write(folder / "a.wav", TONE, 16000)
    soundfile.write(folder / "b.MP3", TONE, 16000, format="MP3")
    soundfile.write(folder / "c.opus", np.repeat(TONE, 3), 48000, format="OGG", subtype="OPUS")
    return [folder / "a.wav", folder / "b.MP3", folder / "c.opus"]


def test_mp3_and_opus_are_predict_inputs(tmp_path):
    files = write_compressed(tmp_path)
    assert predict_files(tmp_path) == files
    for file in files:
        assert predict_files(file) == [file]
        wav = load_audio(file, 16000).numpy()
        assert np.argmax(np.abs(np.fft.rfft(wav))) * 16000 / len(wav) == pytest.approx(440, abs=2)


def test_a_binary_file_of_another_extension_is_a_one_line_error(tmp_path):
    soundfile.write(tmp_path / "talk.aiff", TONE, 16000, format="AIFF")
    with pytest.raises(ValueError, match=r"talk\.aiff is not UTF-8 text, so not a list file"):
        predict_files(tmp_path / "talk.aiff")
