"""CTC beam search through torchaudio's flashlight decoder (lexicon-free, optional KenLM n-gram)."""
from __future__ import annotations

import torch


class BeamDecoder:
    """Lexicon-free beam search over the vocabulary's tokens; the space token is the word boundary.

    Needs `flashlight-text` (pip install flashlight-text); raises a clear ImportError otherwise.
    """

    def __init__(self, vocab, beam_size: int = 50, lm_path: str | None = None, lm_weight: float = 2.0,
                 word_score: float = 0.0):
        try:
            from torchaudio.models.decoder import ctc_decoder
        except ImportError as err:
            raise ImportError("model.decoder=beam needs flashlight-text: pip install flashlight-text") from err
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
