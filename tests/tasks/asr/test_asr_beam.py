"""The beam decoder: what it needs is checked when the model is built, and on peaked CTC outputs without a language
model it reads what greedy decoding reads."""
import sys
import types

import pytest
import torch

from infomamba import EncoderConfig
from infomamba.tasks.asr.beam import BeamDecoder
from infomamba.tasks.asr.module import CTCSpeechRecognizer
from infomamba.tasks.asr.vocab import CharVocab

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
