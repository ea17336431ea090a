"""Transcript normalisation and CTC output vocabularies (characters or trained subwords).

Every vocabulary reserves id 0 for the CTC blank and shares one interface: ``len(vocab)``,
``vocab.blank``, ``encode(text) -> list[int]``, ``decode(ids) -> str`` and
``ctc_greedy_decode(log_probs, lengths) -> list[str]``. ``encode`` expects text that
``normalize_transcript`` already produced and raises ``ValueError`` naming the first character it
cannot represent; it never maps a character to an unknown token silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

BLANK = "<blank>"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALPHABET = " '" + LETTERS  # every character a normalised transcript can contain
_NOT_KEPT = re.compile(r"[^A-Za-z' ]")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'"})  # typographic: "isn’t" is "ISN'T"
_SPOKEN_SYMBOLS = "&%+=@#"  # read aloud ("and", "percent", ...), unlike punctuation; so are currency signs


class OOVError(ValueError):
    """A transcript holds a character the vocabulary cannot represent; ``char`` is that character."""

    def __init__(self, char: str, text: str, hint: str) -> None:
        self.char = char
        super().__init__(f"out-of-vocabulary character {char!r} (U+{ord(char):04X}) in {text!r}: {hint}")


def normalize_transcript(text: str, strict: bool = False) -> str:
    """LibriSpeech-style normalisation, exactly as the offline speech data was built.

    Typographic apostrophes (U+2019, U+2018, U+02BC) -> ASCII apostrophe; hyphens -> space; every other
    character but A-Z, a-z and the apostrophe -> space; apostrophes at word edges stripped (quotes);
    uppercase; words joined by single spaces. ``"Rock-'n'-roll, isn’t it?"`` -> ``"ROCK N ROLL ISN'T IT"``.

    Args:
        text: raw transcript.
        strict: if True, raise ``OOVError`` (a ``ValueError``) naming the character when the text
            holds spoken content the normalisation would silently delete: a digit, a letter outside
            A-Z/a-z (``"1"``, ``"é"``) or a symbol read aloud (``"&"``, ``"%"``, ``"$"``). Punctuation is
            never an error.
    """
    text = text.translate(_APOSTROPHES)
    if strict:
        for ch in text:
            if _spoken_but_dropped(ch):
                raise OOVError(
                    ch, text, "the normalisation would drop this spoken content; spell digits and symbols "
                    "out as words and transliterate letters outside A-Z",
                )
    cleaned = _NOT_KEPT.sub(" ", text.replace("-", " "))
    words = (w.strip("'") for w in cleaned.split())
    return " ".join(w for w in words if w).upper()


def _spoken_but_dropped(ch: str) -> bool:
    """Whether ``ch`` is spoken (alphanumeric, a symbol read aloud) but not kept by the normalisation."""
    if "A" <= ch <= "Z" or "a" <= ch <= "z":
        return False
    return ch.isalnum() or ch in _SPOKEN_SYMBOLS or unicodedata.category(ch) == "Sc"


def check_alphabet(text: str, alphabet: str = ALPHABET) -> None:
    """Raise ``OOVError`` (a ``ValueError``) naming the first character of ``text`` outside ``alphabet``."""
    for ch in text:
        if ch not in alphabet:
            raise OOVError(ch, text, "encode expects normalize_transcript output (A-Z, apostrophe, space)")


def single_spaced(text: str) -> str:
    """``text``'s words joined by single spaces, none at either end, as every decoder returns them: a CTC output
    may emit the space token at an utterance's edges or twice between words, which the normalised references never
    hold and the character error rate would count as errors."""
    return " ".join(text.split())


def ctc_collapse(ids: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path CTC collapse: merge repeated ids, then drop blanks, per sequence.

    Args:
        ids: (B, T) integer ids (frame-wise argmax).
        lengths: (B,) number of valid frames per sequence; frames past it are ignored.
        blank: the blank id.
    """
    ids = ids.detach().cpu()
    lengths = lengths.detach().cpu()
    keep = torch.ones_like(ids, dtype=torch.bool)
    keep[:, 1:] = ids[:, 1:] != ids[:, :-1]
    keep &= ids != blank
    keep &= torch.arange(ids.shape[1]).unsqueeze(0) < lengths.unsqueeze(1)
    return [row[mask].tolist() for row, mask in zip(ids, keep)]


class _CTCVocab(ABC):
    """Shared CTC decoding for vocabularies whose id 0 is the blank."""

    blank = 0

    @abstractmethod
    def to_json(self) -> str:
        """The whole vocabulary as one string (what a checkpoint carries); `vocab_from_json` reads it."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of output classes, blank included."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Ids of a normalised transcript."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, blanks skipped."""

    def ctc_greedy_decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        """Greedy (best-path) decoding of batch-first CTC outputs.

        Args:
            log_probs: (B, T, V) log-probabilities or logits (only the argmax matters).
            lengths: (B,) valid frames per sequence.
        Returns:
            B strings: argmax per frame, repeats collapsed, blanks dropped, then ``decode``.
        """
        if log_probs.dim() != 3 or log_probs.shape[-1] != len(self):
            raise ValueError(f"expected log_probs (B, T, {len(self)}), got {tuple(log_probs.shape)}")
        best = log_probs.argmax(dim=-1)
        return [self.decode(seq) for seq in ctc_collapse(best, lengths, self.blank)]


class CharVocab(_CTCVocab):
    """Characters of a normalised transcript: 0 = blank, 1 = space, 2 = apostrophe, 3..28 = A-Z."""

    def __init__(self) -> None:
        self.tokens = [BLANK, *ALPHABET]
        self._index = {ch: i for i, ch in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        """Ids of a normalised transcript; ``ValueError`` naming any character outside the vocabulary."""
        check_alphabet(text)
        return [self._index[ch] for ch in text]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids``, blanks skipped, words separated by single spaces (``single_spaced``)."""
        return single_spaced("".join(self.tokens[i] for i in ids if i != self.blank))

    def to_json(self) -> str:
        return json.dumps({"infomamba_vocab": "char"})


class SubwordVocab(_CTCVocab):
    """BPE or unigram subwords trained with HF ``tokenizers`` on normalised training transcripts.

    Id 0 is the blank (a special token never produced by ``encode``). Words are marked with the
    Metaspace pre-tokenizer (``▁``), so ``decode`` restores single spaces. The trained size may be
    below the requested ``vocab_size`` on a small corpus; ``len(vocab)`` is the real size.
    Construct with ``SubwordVocab.train`` (cached) or ``SubwordVocab.load``.
    """

    KINDS = ("bpe", "unigram")

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        if tokenizer.token_to_id(BLANK) != 0:
            raise ValueError(f"tokenizer must hold {BLANK!r} at id 0")
        self._unk = tokenizer.token_to_id("<unk>")

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SubwordVocab":
        """Load a tokenizer JSON written by ``train``."""
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)))

    @classmethod
    def train(
        cls,
        transcripts: Iterable[str],
        kind: str = "bpe",
        vocab_size: int = 256,
        cache_dir: str | os.PathLike | None = None,
    ) -> "SubwordVocab":
        """Train on normalised transcripts, or load the cached result of the same training.

        Args:
            transcripts: normalised training transcripts (``normalize_transcript`` output).
            kind: ``"bpe"`` or ``"unigram"``.
            vocab_size: requested size including the blank (and ``<unk>`` for unigram).
            cache_dir: where ``<kind><size>-<hash of the transcripts>.json`` is kept; None = no cache.
                Written atomically (temporary file + rename), so concurrent ranks never read half a file.
        """
        if kind not in cls.KINDS:
            raise ValueError(f"subword kind must be one of {cls.KINDS}, got {kind!r}")
        texts = list(transcripts)
        if not texts:
            raise ValueError("cannot train a subword vocabulary on zero transcripts")
        for text in texts:
            check_alphabet(text)
        digest = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]
        cache = Path(cache_dir) / f"{kind}{vocab_size}-{digest}.json" if cache_dir is not None else None
        if cache is not None and cache.is_file():
            return cls.load(cache)
        vocab = cls(_train_tokenizer(texts, kind, vocab_size))
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=cache.name, suffix=".tmp")
            os.close(fd)
            try:
                vocab.tokenizer.save(tmp)
                os.replace(tmp, cache)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
        return vocab

    def encode(self, text: str) -> list[int]:
        """Subword ids of a normalised transcript; ``ValueError`` for characters outside A-Z, ' and space."""
        check_alphabet(text)
        ids = self.tokenizer.encode(text).ids
        if self._unk is not None and self._unk in ids:
            raise ValueError(f"{text!r} holds a piece the subword vocabulary cannot represent")
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` (blank skipped), words separated by single spaces."""
        return self.tokenizer.decode([int(i) for i in ids if i != self.blank]).strip()

    def to_json(self) -> str:
        """The Hugging Face tokenizer.json of the subwords."""
        return self.tokenizer.to_str()


def vocab_from_json(text: str) -> CharVocab | SubwordVocab:
    """The vocabulary whose `to_json()` is ``text``."""
    if json.loads(text).get("infomamba_vocab") == "char":
        return CharVocab()
    from tokenizers import Tokenizer

    return SubwordVocab(Tokenizer.from_str(text))


def _train_tokenizer(texts: list[str], kind: str, vocab_size: int):
    """A fresh HF tokenizer of ``kind`` trained on ``texts`` with blank at id 0 and all of A-Z, ' seeded."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if kind == "bpe":
        tokenizer = Tokenizer(models.BPE())
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, special_tokens=[BLANK], initial_alphabet=list("▁'" + LETTERS),
            show_progress=False,
        )
    else:
        tokenizer = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size, special_tokens=[BLANK, "<unk>"], unk_token="<unk>",
            initial_alphabet=list("▁'" + LETTERS), show_progress=False,
        )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer
