"""Text tokenizers behind one small interface (`TextTokenizer`), and their cache.

Kinds:
- ``bytes``: UTF-8 bytes, id = byte + 2 (vocabulary 258, nothing to train).
- ``bpe`` / ``wordpiece``: trained with Hugging Face ``tokenizers`` on the training texts only;
  normalisation NFKC + lowercase, BERT pre-tokenisation (split on whitespace and punctuation).
  `build_tokenizer` caches them as ``tokenizer.json`` in the user cache (`cache.user_cache_dir`, never in the
  data folder) keyed by kind, vocabulary size, recipe version and a hash of the training texts themselves
  (so a changed split or seed retrains).
- ``word``: a fixed whitespace-level vocabulary (used by ListOps).
- a file: the tokenizer it holds, a checkpoint's (``.ckpt``: the one its weights were trained with) or a
  ``tokenizer.json`` (`read_tokenizer_file`); how a fine-tuning gets its pretraining's ids.
- any other name: a pretrained tokenizer through ``transformers.AutoTokenizer`` (optional dependency),
  used without adding special tokens; a path that does not exist and a near miss of the kinds above are refused
  (`check_pretrained_name`).

Our own kinds put ``[PAD]`` at id 0 and ``[UNK]`` at id 1 and add no other special token.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from infomamba.tasks.checkpoint_file import read_checkpoint_file
from infomamba.tasks.paths import missing, write_atomic

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
TRAINED_KINDS = ("bpe", "wordpiece")
# Bump when the training recipe (normalisation, pre-tokenisation, trainer options) changes: it is part of
# the cache key, so tokenizers trained by an older recipe are not reused.
RECIPE_VERSION = 1
_BYTE_OFFSET = 2
_HF_MODEL_KIND = {"BPE": "bpe", "WordPiece": "wordpiece", "WordLevel": "word"}
_BR_TAG = re.compile(r"<br\s*/?>", re.IGNORECASE)


class TextTokenizer:
    """Text -> token ids, with ``pad_id``, ``unk_id`` and ``vocab_size``.

    Build one with `TextTokenizer.utf8_bytes`, `TextTokenizer.train`, `TextTokenizer.word_level`,
    `TextTokenizer.pretrained` or `TextTokenizer.load` (or `build_tokenizer`, which also caches).
    """

    def __init__(self, kind: str, backend: Any = None, name: str | None = None) -> None:
        self.kind = kind
        self._backend = backend
        self._name = name

    @classmethod
    def utf8_bytes(cls) -> TextTokenizer:
        """UTF-8 byte tokenizer: [PAD]=0, [UNK]=1 (never produced), byte b -> b + 2."""
        return cls("bytes")

    @classmethod
    def train(cls, kind: str, texts: Iterable[str], vocab_size: int) -> TextTokenizer:
        """Train a ``bpe`` or ``wordpiece`` tokenizer of at most ``vocab_size`` tokens on ``texts``."""
        if kind not in TRAINED_KINDS:
            raise ValueError(f"Can only train {TRAINED_KINDS}, got {kind!r}.")
        if vocab_size < 3:
            raise ValueError(f"vocab_size must be >= 3 (two special tokens + text), got {vocab_size}.")
        specials = [PAD_TOKEN, UNK_TOKEN]
        if kind == "bpe":
            backend = Tokenizer(models.BPE(unk_token=UNK_TOKEN))
            trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
        else:
            backend = Tokenizer(models.WordPiece(unk_token=UNK_TOKEN))
            trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False)
        backend.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        backend.train_from_iterator(texts, trainer)
        return cls(kind, backend)

    @classmethod
    def word_level(cls, vocabulary: Sequence[str]) -> TextTokenizer:
        """Whitespace-split tokenizer over a fixed ``vocabulary`` ([PAD]=0, [UNK]=1, then the words)."""
        words = [PAD_TOKEN, UNK_TOKEN, *vocabulary]
        if len(set(words)) != len(words):
            raise ValueError("word_level vocabulary has duplicates or contains [PAD]/[UNK].")
        backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK_TOKEN))
        backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        return cls("word", backend)

    @classmethod
    def pretrained(cls, name: str) -> TextTokenizer:
        """A pretrained Hugging Face tokenizer (``transformers.AutoTokenizer``) by hub name or local path."""
        try:
            from transformers import AutoTokenizer
        except ImportError as error:
            raise ImportError(
                f"tokenizer={name!r} is not one of bytes|bpe|wordpiece, so it is read as a pretrained Hugging "
                "Face tokenizer name, which needs `pip install transformers` (and the hub or a local copy)."
            ) from error
        try:
            backend = AutoTokenizer.from_pretrained(name)
        except OSError as error:  # a ValueError: the CLI says those in one line
            raise ValueError(
                f"Could not load the pretrained tokenizer {name!r} (offline, or not a hub name / local "
                "folder?). Use tokenizer=bytes|bpe|wordpiece to train one from the data instead."
            ) from error
        tokenizer = cls("pretrained", backend, name=name)
        if tokenizer.pad_id is None:
            raise ValueError(f"Pretrained tokenizer {name!r} has neither a pad nor an eos token to pad with.")
        return tokenizer

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        """Load a tokenizer written by `save`."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"), source=str(path))

    def save(self, path: str | Path) -> None:
        """Write `to_json()` to ``path`` atomically."""
        write_atomic(Path(path), self.to_json())

    @classmethod
    def from_json(cls, text: str, source: str = "tokenizer") -> TextTokenizer:
        """The tokenizer `to_json` described (a pretrained one is loaded again by its name)."""
        spec = json.loads(text)
        marker = spec.get("infomamba_tokenizer")
        if marker == "bytes":
            return cls.utf8_bytes()
        if marker == "pretrained":
            return cls.pretrained(spec["name"])
        model_type = spec.get("model", {}).get("type")
        if model_type not in _HF_MODEL_KIND:
            raise ValueError(f"{source}: not a tokenizer saved by TextTokenizer (model type {model_type!r}).")
        return cls(_HF_MODEL_KIND[model_type], Tokenizer.from_str(text))

    def to_json(self) -> str:
        """The whole tokenizer as one string (what a checkpoint carries): a Hugging Face tokenizer.json
        for our trained and word-level kinds, a small marker for ``bytes`` and pretrained names."""
        if self.kind == "bytes":
            return json.dumps({"infomamba_tokenizer": "bytes"})
        if self.kind == "pretrained":
            return json.dumps({"infomamba_tokenizer": "pretrained", "name": self._name})
        return self._backend.to_str()

    @property
    def setting(self) -> str:
        """The data.tokenizer value that builds a tokenizer of this kind: bytes, bpe, wordpiece or the pretrained
        name (word: ListOps' own vocabulary)."""
        return self._name if self.kind == "pretrained" else self.kind

    @property
    def pad_id(self) -> int | None:
        """Id used for padding (0 for our kinds; the pad or else eos id of a pretrained tokenizer)."""
        if self.kind == "bytes":
            return 0
        if self.kind == "pretrained":
            pad = self._backend.pad_token_id
            return pad if pad is not None else self._backend.eos_token_id
        return self._backend.token_to_id(PAD_TOKEN)

    @property
    def unk_id(self) -> int | None:
        """Id of unknown text (None for a pretrained tokenizer without one, e.g. byte-level BPE)."""
        if self.kind == "bytes":
            return 1
        if self.kind == "pretrained":
            return self._backend.unk_token_id
        return self._backend.token_to_id(UNK_TOKEN)

    @property
    def vocab_size(self) -> int:
        """Number of ids (embedding rows needed)."""
        if self.kind == "bytes":
            return 256 + _BYTE_OFFSET
        if self.kind == "pretrained":
            return len(self._backend)
        return self._backend.get_vocab_size()

    def token_to_id(self, token: str) -> int | None:
        """Id of a vocabulary entry, None if absent (for ``bytes`` only the special tokens are entries)."""
        if self.kind == "bytes":
            return {PAD_TOKEN: 0, UNK_TOKEN: 1}.get(token)
        if self.kind == "pretrained":
            return self._backend.get_vocab().get(token)
        return self._backend.token_to_id(token)

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added, no truncation)."""
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of every text (parallel for the Hugging Face backends)."""
        if self.kind == "bytes":
            return [[b + _BYTE_OFFSET for b in t.encode("utf-8")] for t in texts]
        if self.kind == "pretrained":
            return self._backend(list(texts), add_special_tokens=False)["input_ids"]
        return [e.ids for e in self._backend.encode_batch(list(texts))]


def clean_text(text: Any) -> str:
    """What the tokenizer is given for a raw text, in training and in prediction alike: ``<br />`` tags
    (IMDb) become spaces, whitespace is stripped; a missing text (NaN, None) becomes ""."""
    return _BR_TAG.sub(" ", text).strip() if isinstance(text, str) else ""


def texts_fingerprint(texts: Iterable[str]) -> str:
    """Short sha256 of the texts and their order: the identity of the data a tokenizer is trained on."""
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def tokenizer_files(setting: str) -> list[Path]:
    """The file a data.tokenizer ``setting`` names, in a list ([] for a kind or a pretrained name)."""
    named = setting not in ("bytes", *TRAINED_KINDS) and Path(setting).is_file()
    return [Path(setting)] if named else []


def read_tokenizer_file(path: Path) -> TextTokenizer:
    """The tokenizer of a checkpoint (``.ckpt``, `--task text` or `text_mlm`: the one its weights were trained with,
    read through a memory map, no weights loaded) or of a ``tokenizer.json``."""
    if path.suffix != ".ckpt":
        return TextTokenizer.load(path)
    checkpoint = read_checkpoint_file(path, "data.tokenizer", mmap=True)
    if "tokenizer" not in checkpoint:
        raise ValueError(f"data.tokenizer {path}: the checkpoint holds no tokenizer (not a text task's).")
    return TextTokenizer.from_json(checkpoint["tokenizer"], source=str(path))


def looks_like_path(setting: str) -> bool:
    """Whether a data.tokenizer value names a file rather than a pretrained tokenizer: a .ckpt or .json name, an
    absolute path, one starting with "." or "~", a backslash, or more than one "/" (a hub name is "org/name")."""
    return (Path(setting).suffix in (".ckpt", ".json") or Path(setting).is_absolute() or "\\" in setting
            or setting.startswith((".", "~")) or setting.count("/") > 1)


def check_pretrained_name(setting: str) -> None:
    """Refuse a data.tokenizer value that would be read as a pretrained Hugging Face name but is meant otherwise: a
    path that does not exist (FileNotFoundError; an existing folder is a local pretrained tokenizer), or a near miss
    of our kinds (ValueError naming them): either had been reported as a missing `transformers` package."""
    if looks_like_path(setting) and not Path(setting).exists():
        raise FileNotFoundError(missing("data.tokenizer", setting, "does not exist (a tokenizer file: a .ckpt of a "
                                        "text task or a tokenizer.json)"))
    near = difflib.get_close_matches(setting, ("bytes", *TRAINED_KINDS), n=1)
    if near:
        raise ValueError(f"data.tokenizer={setting!r} is not one of bytes, {', '.join(TRAINED_KINDS)} or a tokenizer "
                         f"file; did you mean {near[0]}? (another name is read as a pretrained Hugging Face "
                         "tokenizer, which needs `pip install transformers`)")


def build_tokenizer(
    kind: str, train_texts: Sequence[str], vocab_size: int = 8000, cache_dir: str | Path | None = None
) -> TextTokenizer:
    """The tokenizer of ``kind`` (bytes | bpe | wordpiece | a file, `read_tokenizer_file` | pretrained name) for
    these training texts.

    ``bpe``/``wordpiece`` are trained on ``train_texts`` (the training split only, never validation or
    test) and cached in ``cache_dir/tokenizers/<kind>-<vocab>-v<recipe>-<hash of texts>/tokenizer.json``;
    a cached file is loaded instead of retraining. ``cache_dir=None`` disables the cache.
    """
    if kind == "bytes":
        return TextTokenizer.utf8_bytes()
    if tokenizer_files(kind):
        tokenizer = read_tokenizer_file(Path(kind))
        rank_zero_info(f"Tokenizer: {tokenizer.kind} ({tokenizer.vocab_size} tokens) of {kind}, not trained")
        return tokenizer
    if kind not in TRAINED_KINDS:
        check_pretrained_name(kind)
        return TextTokenizer.pretrained(kind)
    path = None
    if cache_dir is not None:
        key = f"{kind}-{vocab_size}-v{RECIPE_VERSION}-{texts_fingerprint(train_texts)}"
        path = Path(cache_dir) / "tokenizers" / key / "tokenizer.json"
        if path.is_file():
            rank_zero_info(f"Tokenizer: loaded cached {kind} ({vocab_size}) from {path}")
            return TextTokenizer.load(path)
    tokenizer = TextTokenizer.train(kind, train_texts, vocab_size)
    message = f"Tokenizer: trained {kind} on {len(train_texts)} training texts, {tokenizer.vocab_size} tokens"
    if path is not None:
        try:
            tokenizer.save(path)
            message += f", cached at {path}"
        except OSError as error:
            rank_zero_warn(f"Tokenizer: could not cache at {path} ({error}); it will be retrained next time.")
    rank_zero_info(message)
    return tokenizer
