"""CTC beam search through torchaudio's flashlight decoder (lexicon-free, optional KenLM n-gram)."""
from __future__ import annotations

from pathlib import Path

import torch

from ...layers.checks import require_within
from .vocab import single_spaced


def ctc_decoder_factory():
    """torchaudio's `ctc_decoder`, or an ImportError saying what to install: torchaudio raises a RuntimeError from
    the module's attribute look-up when flashlight-text is missing."""
    try:
        from torchaudio.models.decoder import ctc_decoder
    except (ImportError, RuntimeError) as err:
        raise ImportError("model.decoder=beam needs flashlight-text: pip install flashlight-text") from err
    return ctc_decoder


def check_beam_options(lm_path: str | None, beam_size: int) -> None:
    """What the beam decoder needs, checked when the model is built rather than at its first decode (a sanity
    validation's traceback): at least one beam (none had decoded every utterance to '' without a word),
    flashlight-text, and an n-gram file at `lm_path` if one is given."""
    require_within("model", 1, beam_size=beam_size)
    ctc_decoder_factory()
    if lm_path is not None and not Path(lm_path).is_file():
        raise FileNotFoundError(f"model.lm_path {lm_path} is not a file (an ARPA or KenLM binary n-gram)")


def beam_vocab_problem(vocab) -> str | None:
    """Why the beam decoder cannot search over `vocab`, or None: its word boundary is the space token, which only
    the character vocabulary has (subword pieces carry their word boundary inside them)."""
    if " " in getattr(vocab, "tokens", []):
        return None
    return (f"model.decoder=beam needs a character vocabulary with a space token (data.vocab=char), got "
            f"{type(vocab).__name__} ({len(vocab)} symbols)")


def lm_load_problem(lm_path: str, err: Exception) -> str:
    """One line for a language model file KenLM cannot load: its own message spans lines and opens with the C++
    source location, while the reason (`first non-empty line was "..." not \\data\\`) is its last line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(err).__name__
    return (f"model.lm_path {lm_path} cannot be loaded as an n-gram language model (expected an ARPA file of order "
            f"2 or more, starting with \\data\\, or a KenLM binary): {reason}")


class BeamDecoder:
    """Lexicon-free beam search over the vocabulary's tokens; the space token is the word boundary.

    Needs `flashlight-text` (pip install flashlight-text); raises a clear ImportError otherwise, and a one-line
    ValueError for a vocabulary without a space token or a language model file KenLM cannot load.
    """

    def __init__(self, vocab, beam_size: int = 50, lm_path: str | None = None, lm_weight: float = 2.0,
                 word_score: float = 0.0):
        ctc_decoder = ctc_decoder_factory()
        problem = beam_vocab_problem(vocab)
        if problem is not None:
            raise ValueError(problem)
        tokens = list(vocab.tokens)
        self.blank = tokens[vocab.blank]
        self.tokens = ["|" if t == " " else t for t in tokens]
        try:
            self.decoder = ctc_decoder(lexicon=None, tokens=self.tokens, lm=lm_path, beam_size=beam_size,
                                       lm_weight=lm_weight, word_score=word_score, blank_token=self.blank,
                                       sil_token="|", unk_word="<unk>")
        except (RuntimeError, UnicodeDecodeError) as err:  # KenLM's FormatLoadException; a binary file's bytes
            if lm_path is None:
                raise
            raise ValueError(lm_load_problem(lm_path, err)) from err

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        hyps = self.decoder(log_probs.detach().float().cpu().contiguous(), lengths.cpu().int())
        texts = []
        for nbest in hyps:
            ids = nbest[0].tokens.tolist() if nbest else []
            chars = [self.tokens[i] for i in ids if self.tokens[i] != self.blank]
            texts.append(single_spaced("".join(chars).replace("|", " ")))
        return texts
