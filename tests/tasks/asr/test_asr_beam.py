"""The beam decoder: what it needs is checked when the model is built, or once its vocabulary and language model are
known, before the first batch; on peaked CTC outputs without a language model it reads what greedy decoding reads."""
import sys
import types

import pytest
import torch

from infomamba import EncoderConfig
from infomamba.cli import main
from infomamba.tasks.asr.beam import BeamDecoder
from infomamba.tasks.asr.module import CTCSpeechRecognizer
from infomamba.tasks.asr.vocab import CharVocab
from tiny_data import TINY_MODEL, write_librispeech

TINY = EncoderConfig(dim=16, depth=1, mixer="attention")


def test_a_missing_language_model_file_is_named_when_the_model_is_built(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model.lm_path .*nope.arpa is not a file"):
        CTCSpeechRecognizer(encoder=TINY, decoder="beam", lm_path=str(tmp_path / "nope.arpa"))


def test_missing_flashlight_is_an_import_error_saying_what_to_install(monkeypatch):
    """torchaudio raises a RuntimeError from the module's attribute look-up when flashlight-text is missing."""
    def missing(name):
        raise RuntimeError("CTC Decoder suit requires flashlight-text package and optionally KenLM.")

    stand_in = types.ModuleType("torchaudio.models.decoder")
    stand_in.__getattr__ = missing
    monkeypatch.setitem(sys.modules, "torchaudio.models.decoder", stand_in)
    with pytest.raises(ImportError, match="model.decoder=beam needs flashlight-text: pip install flashlight-text"):
        CTCSpeechRecognizer(encoder=TINY, decoder="beam")


def test_without_a_language_model_peaked_outputs_decode_as_greedy_does():
    pytest.importorskip("flashlight.lib.text")
    vocab = CharVocab()
    text = "A CAB"
    ids = []
    for char in text:  # each character twice with a blank between: CTC's greedy collapse gives the text back
        ids += [vocab.encode(char)[0]] * 2 + [vocab.blank]
    log_probs = torch.full((1, len(ids), len(vocab)), -20.0)
    log_probs[0, torch.arange(len(ids)), torch.tensor(ids)] = 0.0
    decoded = BeamDecoder(vocab, beam_size=8)(log_probs.log_softmax(-1), torch.tensor([len(ids)]))
    assert decoded == [text]


def test_a_file_that_is_no_language_model_is_a_one_line_error_naming_it(tmp_path):
    """KenLM's FormatLoadException had come through as a RuntimeError of several lines opening with its C++ source."""
    pytest.importorskip("flashlight.lib.text")
    bad = tmp_path / "bad.arpa"
    bad.write_text("not an arpa\n")
    with pytest.raises(ValueError) as info:
        BeamDecoder(CharVocab(), beam_size=4, lm_path=str(bad))
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"model.lm_path {bad} cannot be loaded")
    assert "ARPA file" in message and "KenLM binary" in message and 'line was "not an arpa" not \\data\\' in message


def tiny_fit(tmp_path, monkeypatch) -> list[str]:
    """`infomamba fit` arguments for a two-utterance LibriSpeech tree under `tmp_path`, run from there."""
    write_librispeech(tmp_path / "LibriSpeech", utterances=2)
    monkeypatch.chdir(tmp_path)
    return ["fit", "--task", "asr", f"--data.root={tmp_path / 'LibriSpeech'}", "--data.test_splits=[]",
            "--data.batch_size=2", *TINY_MODEL, "--trainer.max_steps=1"]


def test_a_beam_decoder_that_cannot_be_built_is_refused_in_one_line_before_the_first_batch(tmp_path, monkeypatch):
    """Built at the first decode, it had stopped the sanity validation with a traceback, for a subword vocabulary
    and for a language model file KenLM cannot read."""
    pytest.importorskip("flashlight.lib.text")
    fit = [*tiny_fit(tmp_path, monkeypatch), "--model.decoder=beam"]
    with pytest.raises(SystemExit, match=r"^infomamba fit --task asr: model.decoder=beam needs a character vocabulary "
                                         r"with a space token \(data.vocab=char\), got SubwordVocab \(\d+ symbols\)$"):
        main([*fit, "--data.vocab=bpe", "--data.vocab_size=40"])
    (tmp_path / "bad.arpa").write_text("not an arpa\n")
    with pytest.raises(SystemExit, match=r"^infomamba fit --task asr: model.lm_path bad.arpa cannot be loaded as an "
                                         r"n-gram language model \(expected an ARPA file .*KenLM binary\): first "
                                         r"non-empty line was \"not an arpa\" not \\data\\. Byte: \d+$"):
        main([*fit, "--model.lm_path=bad.arpa"])
    assert not list((tmp_path / "runs" / "asr").glob("version_*"))  # the claimed folders taken back


def test_predicting_with_the_beam_decoder_from_a_subword_checkpoint_is_refused_in_one_line(tmp_path, monkeypatch):
    """The vocabulary comes from the checkpoint: the decoder had failed with a traceback in the first prediction
    batch, and after `load_from_checkpoint(..., decoder="beam")` at the first `transcribe`."""
    pytest.importorskip("flashlight.lib.text")
    main([*tiny_fit(tmp_path, monkeypatch), "--data.vocab=bpe", "--data.vocab_size=40",
          "--trainer.limit_val_batches=0"])
    checkpoint = next((tmp_path / "runs" / "asr").glob("version_*/checkpoints/last.ckpt"))
    audio = next((tmp_path / "LibriSpeech" / "dev-clean").rglob("*.flac"))
    refusal = (r"model.decoder=beam needs a character vocabulary with a space token \(data.vocab=char\), got "
               r"SubwordVocab")
    with pytest.raises(SystemExit, match=rf"^infomamba predict --task asr: {refusal}"):
        main(["predict", "--task", "asr", "--ckpt_path", str(checkpoint), f"--data.predict_path={audio}",
              "--model.decoder=beam"])
    with pytest.raises(ValueError, match=f"^{refusal}"):
        CTCSpeechRecognizer.load_from_checkpoint(checkpoint, decoder="beam")
