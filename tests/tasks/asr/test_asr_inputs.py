"""Prediction inputs people have: MP3 and Opus files are audio (libsndfile reads them), in a folder or alone; a
single file of an audio format not listed is a one-line error naming it, not a UnicodeDecodeError from reading it
as a list file."""

import json

import numpy as np
import pytest
import soundfile

from infomamba.tasks.asr.audio import load_audio
from infomamba.tasks.asr.sources import predict_files, read_librispeech_split
from tiny_data import write_librispeech

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


def tiny_recognizer():
    import torch

    from infomamba import EncoderConfig
    from infomamba.losses import LossWeights
    from infomamba.tasks.asr.module import CTCSpeechRecognizer

    torch.manual_seed(0)
    return CTCSpeechRecognizer(EncoderConfig(dim=16, depth=1, mixer_options={"k_max": 4, "d_state": 4}),
                               LossWeights(use_nce=False), spec_augment=False).eval()


@pytest.mark.parametrize("bad, words", [((TONE * 32767).astype(np.int16), "int16 samples; give float samples"),
                                        (np.full(16000, np.nan, dtype=np.float32), "non-finite samples"),
                                        (TONE[:100], "100 samples at 16000 Hz, shorter than one analysis window"),
                                        (np.stack([TONE, TONE]), "must be 1-D")])
def test_transcribe_names_the_waveform_it_cannot_use(bad, words):
    """int16 PCM had been read as floats 32,767 times too loud, NaN samples transcribed as '', a short one raised
    without saying which input it was."""
    with pytest.raises(ValueError, match=rf"^input 1 \(a waveform\): .*{words}"):
        tiny_recognizer().transcribe([TONE, bad])


def test_transcribe_names_the_place_of_a_file_it_cannot_read(tmp_path):
    """The error had named the file alone, where the docstring promises its position among the inputs too."""
    from infomamba.tasks.asr.audio import AudioError

    (tmp_path / "cut.wav").write_bytes(b"RIFF0000WAVE")
    with pytest.raises(AudioError, match=r"^cannot use audio input 1 \(/\S*/cut.wav\): LibsndfileError: [^/]*$"):
        tiny_recognizer().transcribe([TONE, tmp_path / "cut.wav"])


def test_transcribe_resamples_a_waveform_given_its_rate_and_reads_an_open_file(tmp_path):
    import io

    model = tiny_recognizer()
    tone_8k = TONE[::2].copy()  # the 440 Hz tone at 8 kHz
    soundfile.write(tmp_path / "tone8k.wav", tone_8k, 8000, subtype="FLOAT")
    from_file = model.transcribe([tmp_path / "tone8k.wav"])
    assert model.transcribe([tone_8k], sample_rate=8000) == from_file != model.transcribe([tone_8k])  # read as 16 kHz
    assert model.transcribe([io.BytesIO((tmp_path / "tone8k.wav").read_bytes())]) == from_file


def test_files_as_other_systems_write_them(tmp_path):
    """A tree copied from a Mac holds a `._x.flac` of metadata beside each file (read, it was a `no_transcript`
    skip, or an error row in predict; its `._x.trans.txt` a UnicodeDecodeError); a transcript file separated by
    tabs had left every utterance without its transcript; a list or manifest saved with a byte-order mark had lost
    its first path."""
    write_librispeech(tmp_path, utterances=2)
    chapter = tmp_path / "dev-clean" / "100" / "7"
    (chapter / "._100-7-0000.flac").write_bytes(b"\x00\x05\x16\x07Mac OS X")
    (chapter / "._100-7.trans.txt").write_bytes(b"\x00\x05\x16\x07\xff\xfe")
    trans = chapter / "100-7.trans.txt"
    trans.write_text(trans.read_text().replace(" ", "\t", 1))
    utts, skips = read_librispeech_split(tmp_path / "dev-clean")
    assert [u.utt_id for u in utts] == ["100-7-0000", "100-7-0001", "101-7-0000", "101-7-0001"]
    assert all(u.text for u in utts) and dict(skips.counts) == {"hidden": 2}
    assert predict_files(chapter) == sorted(chapter.glob("1*.flac"))
    listed = tmp_path / "inputs.txt"
    listed.write_text("\ufeff" + "\n".join(p.name for p in sorted(chapter.glob("1*.flac"))), encoding="utf-8")
    listed.rename(chapter / "inputs.txt")
    assert predict_files(chapter / "inputs.txt") == sorted(chapter.glob("1*.flac"))
    manifest = chapter / "m.jsonl"
    manifest.write_text("\ufeff" + json.dumps({"audio_filepath": "100-7-0001.flac"}) + "\n", encoding="utf-8")
    assert predict_files(manifest) == [chapter / "100-7-0001.flac"]


def test_a_transcript_file_that_is_not_utf8_is_one_line_naming_it(tmp_path):
    write_librispeech(tmp_path, utterances=1)
    trans = tmp_path / "dev-clean" / "101" / "7" / "101-7.trans.txt"
    trans.write_bytes(b"101-7-0000 CAF\xc9\n")
    with pytest.raises(ValueError, match=r"101-7\.trans\.txt:1: not UTF-8 text \(byte 0xc9\)$"):
        read_librispeech_split(tmp_path / "dev-clean")
