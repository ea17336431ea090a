"""CTC beam search through torchaudio's flashlight decoder (lexicon-free, optional KenLM n-gram)."""
from __future__ import annotations

from pathlib import Path

import torch


def ctc_decoder_factory():
    """torchaudio's `ctc_decoder`, or an ImportError saying what to install: torchaudio raises a RuntimeError from
    the module's attribute look-up when flashlight-text is missing."""
    try:
        from torchaudio.models.decoder import ctc_decoder
    except (ImportError, RuntimeError) as err:
        raise ImportError("model.decoder=beam needs flashlight-text: pip install flashlight-text") from err
    return ctc_decoder


def check_beam_options(lm_path: str | None) -> None:
    """What the beam decoder needs, checked when the model is built rather than at its first decode (a sanity
    validation's traceback): flashlight-text, and an n-gram file at `lm_path` if one is given."""
    ctc_decoder_factory()
    if lm_path is not None and not Path(lm_path).is_file():
        raise FileNotFoundError(f"model.lm_path {lm_path} is not a file (an ARPA or KenLM binary n-gram)")


class BeamDecoder:
    """Lexicon-free beam search over the vocabulary's tokens; the space token is the word boundary.

    Needs `flashlight-text` (pip install flashlight-text); raises a clear ImportError otherwise.
    """

    def __init__(self, vocab, beam_size: int = 50, lm_path: str | None = None, lm_weight: float = 2.0,
                 word_score: float = 0.0):
        ctc_decoder = ctc_decoder_factory()
        tokens = list(getattr(vocab, "tokens", []))
        if not tokens or " " not in tokens:
            raise ValueError("the beam decoder needs a character vocabulary with a space token (data.vocab=char)")
        self.blank = tokens[vocab.blank]
        self.tokens = ["|" if t == " " else t for t in tokens]
        self.decoder = ctc_decoder(lexicon=None, tokens=self.tokens, lm=lm_path, beam_size=beam_size,
                                   lm_weight=lm_weight, word_score=word_score, blank_token=self.blank,
                                   sil_token="|", unk_word="<unk>")

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        hyps = self.decoder(log_probs.detach().float().cpu().contiguous(), lengths.cpu().int())
        texts = []
        for nbest in hyps:
            ids = nbest[0].tokens.tolist() if nbest else []
            chars = [self.tokens[i] for i in ids if self.tokens[i] != self.blank]
            texts.append(" ".join("".join(chars).replace("|", " ").split()))
        return texts
