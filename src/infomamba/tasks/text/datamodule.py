"""TextDataModule: text classification batches from local files, the HF hub, or generated ListOps;
MaskedTextDataModule: the same sources as texts alone, unlabelled ones too, for masked-LM pretraining.

Sources (``data.root`` or ``data.hub_id``; neither = generated ListOps): IMDb folders, AG-News and generic
csv/jsonl/json/parquet tables, one folder per class (``root/<class>/*``, ``root/{train,test}/<class>/*``),
one table file, or a hub id; `sources` says how each is read.

Splits: validation is carved from train with ``seed``; test is the official test split. A source with
only a train split gets its test carved from it too; one with only a test split (the offline AG-News)
gets train, validation and test carved from it, with a warning that the numbers are not comparable with
published ones. ``<br />`` tags (IMDb) become spaces; empty texts are skipped and counted.

Each stage reads only what it needs: ``fit`` train and validation, ``validate`` validation, ``test`` the
official test split alone (a carved one needs its pool), ``predict`` only ``predict_path``, which is read
and checked when the data module is built, so an empty file is a one-line error before anything else.

The tokenizer (bytes | bpe | wordpiece | a pretrained HF name | a file holding one) is built from the training
split only;
bpe/wordpiece are cached in the user cache (`cache.user_cache_dir`), never in the data folder. The
tokenizer and the class names are also kept there as a data card, keyed by these settings and the size
and modification time of every data file, and in a fit's checkpoint (`state_dict`). A test or predict
run given a checkpoint takes them from it (`load_state_dict`, which the CLI calls before anything is read),
so predict reads no data file and needs no data folder; without one, it gets them from the card without
reading the training data (a hub dataset has no card and is read whole).

All texts are tokenised once, truncated to ``max_length``, and batched by length (`LengthBucketBatchSampler`,
DDP-aware through the trainer's global rank and world size: run the Trainer with
``use_distributed_sampler=False``). Validation and test samples are shuffled once with ``seed`` first: the
sampler orders evaluation samples by length and keeps the file order among equal lengths (every truncated
text), so a class-sorted test file would give one-class first batches and a misleading partial evaluation
(``limit_test_batches``). Each sample is still seen exactly once over all ranks.

Batches are dicts: ``input_ids`` (B, L) int64, ``padding_mask`` (B, L) bool (True at padding), ``labels``
(B,) int64, padded to the longest sample of the batch; predict batches carry ``input_ids``,
``padding_mask``, ``texts`` (list of str) and ``index`` (B,) int64, the 0-based line / row of each text
in ``predict_path``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from infomamba.layers.checks import require_within
from infomamba.tasks.cache import user_cache_dir
from infomamba.tasks.paths import write_atomic
from infomamba.tasks.sampling import (LengthBucketBatchSampler, ResumableDataLoader, check_token_budget,
                                      every_rank_evaluates, limit_leaves_every_rank_a_batch, padded_length)
from infomamba.tasks.text.listops import NUM_CLASSES as LISTOPS_CLASSES
from infomamba.tasks.text.listops import generate_listops, listops_tokenizer
from infomamba.tasks.text.sources import Source, Split, class_names_of, label_ids, open_source, read_predict_texts
from infomamba.tasks.text.tokenizer import (
    RECIPE_VERSION,
    TextTokenizer,
    build_tokenizer,
    tokenizer_files,
)

SPLITS = ("train", "val", "test")
STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), None: SPLITS}
# Bump when what a data card holds, or how its key is made, changes.
CARD_VERSION = 1
# ListOps defaults: small enough that a CPU run of a few minutes learns something.
LISTOPS_MAX_DEPTH = 5
LISTOPS_MAX_ARGS = 6
LISTOPS_MAX_LENGTH = 200


class EncodedTexts(Dataset):
    """Token ids (truncated) with labels, or with texts and row indices for prediction."""

    def __init__(
        self,
        ids: list[np.ndarray],
        texts: list[str],
        labels: list[int] | None = None,
        rows: list[int] | None = None,
    ) -> None:
        self.ids = ids
        self.texts = texts
        self.labels = labels
        self.rows = rows
        self.lengths = [len(x) for x in ids]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {"input_ids": self.ids[i]}
        if self.labels is not None:
            item["label"] = self.labels[i]
        if self.rows is not None:
            item["text"] = self.texts[i]
            item["index"] = self.rows[i]
        return item


class TextCollator:
    """Pads a list of `EncodedTexts` items to the longest one (``pad_id``, mask True at padding), or with
    ``pad_multiple`` up to the next multiple of it (at most ``max_length``, never below the longest)."""

    def __init__(self, pad_id: int, pad_multiple: int | None = None, max_length: int | None = None) -> None:
        self.pad_id = pad_id
        self.pad_multiple = pad_multiple
        self.max_length = max_length

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        longest = padded_length(max(len(item["input_ids"]) for item in items), self.pad_multiple, self.max_length)
        input_ids = torch.full((len(items), longest), self.pad_id, dtype=torch.long)
        padding_mask = torch.ones((len(items), longest), dtype=torch.bool)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[row, :n] = torch.from_numpy(item["input_ids"])
            padding_mask[row, :n] = False
        batch: dict[str, Any] = {"input_ids": input_ids, "padding_mask": padding_mask}
        if "label" in items[0]:
            batch["labels"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
        if "text" in items[0]:
            batch["texts"] = [item["text"] for item in items]
            batch["index"] = torch.tensor([item["index"] for item in items], dtype=torch.long)
        return batch


class TextDataModule(L.LightningDataModule):
    """Text classification data: local files, a HF hub dataset, or generated ListOps (the default).

    Args:
        root: data folder or file, e.g. ``../shared/data/imdb``: an AG-News csv folder, an aclImdb
            tree, a folder with train/test csv|jsonl|json|parquet files, class folders, or one table
            file. None with ``hub_id`` None: generated ListOps.
        hub_id: Hugging Face dataset id, e.g. ``ag_news`` or ``stanfordnlp/imdb`` (needs ``datasets``
            and network). Exclusive with ``root``.
        text_column: column holding the text (csv/jsonl/json/parquet, hub).
        label_column: column holding the label (strings or integer ids). With ``--task text_mlm`` the labels
            are never read; null there makes a labelled table a corpus (validation carved, no test).
        tokenizer: ``bytes`` | ``bpe`` | ``wordpiece`` (trained on the training split), a pretrained
            HF tokenizer name (needs ``transformers``), or a file: a checkpoint (``.ckpt``, its tokenizer: e.g.
            the masked-LM pretraining's, to fine-tune its weights with the ids they were trained on) or a
            ``tokenizer.json``. ListOps always uses its own word-level vocabulary.
        vocab_size: target vocabulary size of a trained bpe/wordpiece tokenizer. The real size (embedding
            rows) is the ``vocab_size`` property.
        max_length: texts are truncated to this many tokens (the head is kept). A checkpoint keeps it among this
            data module's hyperparameters, which the model reads (`TextClassifier.trained_max_length`): its
            ``predict_texts`` truncates as the fit did.
        batch_size: samples per batch (ignored when ``max_tokens`` is set).
        max_tokens: padding-aware token budget per batch (samples x longest sample); replaces
            ``batch_size`` when set; must be >= the longest sample (<= ``max_length``).
        pad_multiple: pad each batch's length up to a multiple of this (at most ``max_length``) instead of to
            its longest text: a few batch shapes instead of one per length, so that ``model.cuda_graphs``
            replays its captures (it captures at most 4 shapes) instead of running most batches eagerly.
            ``max_tokens`` budgets the lengths before this padding.
        num_workers: DataLoader worker processes.
        val_fraction: share of the training split carved off as validation.
        test_fraction: share carved off as test when the source has no test split (single file, train
            only) or no train split (offline AG-News, whose only split is test).
        seed: seed of the carved splits, of the batch shuffling (plus the epoch), of the evaluation
            order and of ListOps.
        predict_path: texts for ``predict``: a UTF-8 .txt file (one text per line) or csv/jsonl/json/parquet
            with ``text_column``; read when the data module is built.
        listops_size: number of generated ListOps training expressions (validation and test a quarter
            of it each).
        cache_dir: where trained tokenizers and data cards are kept; None: the user cache
            (``$INFOMAMBA_CACHE``, else ``$XDG_CACHE_HOME/infomamba``, else ``~/.cache/infomamba``).
    """

    labels = True  # the classifier's: every text has a label (`MaskedTextDataModule`: texts alone)

    def __init__(
        self,
        root: str | None = None,
        hub_id: str | None = None,
        text_column: str = "text",
        label_column: str | None = "label",
        tokenizer: str = "bpe",
        vocab_size: int = 8000,
        max_length: int = 512,
        batch_size: int = 32,
        max_tokens: int | None = None,
        pad_multiple: int | None = None,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        predict_path: str | None = None,
        listops_size: int = 2000,
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        if root is not None and hub_id is not None:
            raise ValueError(f"Give data.root or data.hub_id, not both (got {root!r} and {hub_id!r}).")
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}.")
        require_within("data", 1, max_length=max_length, batch_size=batch_size)
        require_within("data", 4, listops_size=listops_size)
        if pad_multiple is not None and pad_multiple < 1:
            raise ValueError(f"data.pad_multiple must be >= 1 (or null), got {pad_multiple}.")
        if num_workers < 0:  # else torch's DataLoader refused it with a traceback at the first loader
            raise ValueError(f"data.num_workers must be >= 0, got {num_workers}.")
        # Not logged beside the model's hyperparameters: this `vocab_size` is the size asked of a trained
        # tokenizer, the model's the size it got, and Lightning refuses two values under one key. The
        # run's config.yaml keeps these settings.
        self.save_hyperparameters(logger=False)
        self.root = root
        self.hub_id = hub_id
        self.text_column = text_column
        self.label_column = label_column
        self.tokenizer_name = tokenizer
        self.target_vocab_size = vocab_size
        self.max_length = max_length
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.pad_multiple = pad_multiple
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.predict_path = predict_path
        self.listops_size = listops_size
        self.cache_dir = cache_dir
        self._predict_texts = None if predict_path is None else read_predict_texts(Path(predict_path), text_column)
        self._source: Source | None = None
        self._text_tokenizer: TextTokenizer | None = None
        self._class_names: list[str] | None = None
        self._labels_by_name: bool | None = None
        self._labelled: dict[str, Split] | None = None
        self.train_dataset: EncodedTexts | None = None
        self.val_dataset: EncodedTexts | None = None
        self.test_dataset: EncodedTexts | None = None
        self.predict_dataset: EncodedTexts | None = None

    # ----------------------------------------------------------------------------------- properties
    @property
    def text_tokenizer(self) -> TextTokenizer:
        """The tokenizer (trained on the training split, or ListOps' vocabulary). The model keeps it in its
        checkpoint."""
        self._ensure_meta()
        return self._text_tokenizer

    @property
    def vocab_size(self) -> int:
        """Number of token ids (embedding rows)."""
        self._ensure_meta()
        return self._text_tokenizer.vocab_size

    @property
    def pad_id(self) -> int:
        """Id used for padding."""
        self._ensure_meta()
        return self._text_tokenizer.pad_id

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        """Class names, index = label id."""
        self._ensure_meta()
        return list(self._class_names)

    @property
    def source(self) -> Source:
        """The local or hub source (its layout found from names; splits are read when a stage needs them)."""
        if self._source is None:
            self._source = open_source(self.root, self.hub_id, self.text_column, self.label_column, self.labels)
        return self._source

    # ------------------------------------------------------------------------------------ checkpoint
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data: the tokenizer, the class names and whether labels are read as
        names, so that evaluating or predicting with it reads no training data."""
        if self._text_tokenizer is None:
            return {}
        return {"tokenizer": self._text_tokenizer.to_json(), "class_names": list(self._class_names),
                "labels_by_name": self._labels_by_name}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take a checkpoint's tokenizer and class names: the weights' token ids and label ids mean what they
        meant in training. The CLI calls this before an evaluation reads anything; Lightning again after
        ``setup`` in any run given the checkpoint. What was already encoded with other ones (changed
        data.tokenizer, data.vocab_size, data.seed) is encoded again, with a warning."""
        if not state_dict:
            return
        meta = (state_dict["tokenizer"], list(state_dict["class_names"]), state_dict["labels_by_name"])
        tokenizer = TextTokenizer.from_json(meta[0], source="the checkpoint's data state")
        if self._text_tokenizer is not None:
            if meta == (self._text_tokenizer.to_json(), self._class_names, self._labels_by_name):
                return
            rank_zero_warn("Text data: the checkpoint's tokenizer or class names differ from those of these data.* "
                           "settings; the data is encoded with the checkpoint's, which its weights were trained with.")
        elif not self._is_listops() and tokenizer.setting != self.tokenizer_name \
                and not tokenizer_files(self.tokenizer_name):
            rank_zero_warn(f"Text data: data.tokenizer={self.tokenizer_name} is not the checkpoint's tokenizer "
                           f"({tokenizer.setting}); the data is encoded with the checkpoint's, which its weights "
                           "were trained with.")
        self._text_tokenizer = tokenizer
        self._class_names, self._labels_by_name = meta[1], meta[2]
        self._labelled = None
        self.train_dataset = self.val_dataset = self.test_dataset = self.predict_dataset = None

    # ------------------------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        """Rank 0 trains and caches the tokenizer and writes the data card, so that the other ranks load
        them in `setup`."""
        self._ensure_meta()

    def setup(self, stage: str | None = None) -> None:
        """The tokenizer and class names, then only the data ``stage`` needs (see the module docstring)."""
        self._ensure_meta()
        if stage == "predict":
            if self.predict_dataset is None:
                self.predict_dataset = self._within_budget(self._encode_predict())
            return
        names = [name for name in STAGE_SPLITS[stage] if getattr(self, f"{name}_dataset") is None]
        for name in names:
            setattr(self, f"{name}_dataset", self._within_budget(self._encode(self._split(name), name)))
        if names:
            self._log_summary(names)

    def _within_budget(self, dataset: EncodedTexts) -> EncodedTexts:
        """`dataset`, refused here (`setup`, whose errors the CLI says in one line) when data.max_tokens cannot hold
        its longest text, rather than where its loader's sampler is built."""
        check_token_budget(self.max_tokens, dataset.lengths, "data.")
        return dataset

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        self.setup("validate")
        return every_rank_evaluates("validation", self._loader(self.val_dataset, shuffle=False), self.trainer,
                                    "limit_val_batches")

    def test_dataloader(self) -> DataLoader:
        self.setup("test")
        return every_rank_evaluates("test", self._loader(self.test_dataset, shuffle=False), self.trainer,
                                    "limit_test_batches")

    def predict_dataloader(self) -> DataLoader:
        self.setup("predict")
        return limit_leaves_every_rank_a_batch("predict", self._loader(self.predict_dataset, shuffle=False),
                                               self.trainer, "limit_predict_batches")

    def _loader(self, dataset: EncodedTexts, shuffle: bool) -> DataLoader:
        """Length-bucketed loader; this process's share when a (distributed) trainer is attached."""
        rank, world = 0, 1
        if self.trainer is not None:
            rank, world = self.trainer.global_rank, self.trainer.world_size
        sampler = LengthBucketBatchSampler(
            dataset.lengths,
            batch_size=None if self.max_tokens is not None else self.batch_size,
            max_tokens=self.max_tokens,
            shuffle=shuffle,
            seed=self.seed,
            num_replicas=world,
            rank=rank,
        )
        return ResumableDataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=TextCollator(self.pad_id, self.pad_multiple, self.max_length),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    # ------------------------------------------------------------------------------------ loading
    def _is_listops(self) -> bool:
        return self.root is None and self.hub_id is None

    def _ensure_meta(self) -> None:
        """The tokenizer and class names: ListOps' own, the data card's, or from reading the data (which
        then writes the card)."""
        if self._text_tokenizer is not None:
            return
        if self._is_listops():
            self._text_tokenizer = listops_tokenizer()
            self._class_names = [str(d) for d in range(LISTOPS_CLASSES)] if self.labels else []
            return
        card = self._card_path()
        if card is not None and card.is_file():
            meta = json.loads(card.read_text(encoding="utf-8"))
            self._text_tokenizer = TextTokenizer.from_json(meta["tokenizer"], source=str(card))
            self._class_names, self._labels_by_name = meta["class_names"], meta["labels_by_name"]
            rank_zero_info(f"Text data: tokenizer and class names of {self.source.description} from {card}")
            return
        self._read_labelled()
        if card is not None:
            meta = {"tokenizer": self._text_tokenizer.to_json(), "class_names": self._class_names,
                    "labels_by_name": self._labels_by_name}
            try:
                write_atomic(card, json.dumps(meta))
            except OSError as error:
                rank_zero_warn(f"Text data: could not write {card} ({error}); test and predict runs will read "
                               "the training data again.")

    def _card_path(self) -> Path | None:
        """Where the data card of this local source and these settings lives (None for a hub dataset)."""
        files = self.source.files
        if files is None:
            return None
        identity = {
            "card": CARD_VERSION,
            "root": str(Path(self.root).resolve()),
            "files": [[str(path), stat.st_size, stat.st_mtime_ns]
                      for path in [*files, *tokenizer_files(self.tokenizer_name)] for stat in (path.stat(),)],
            "settings": [self.text_column, self.label_column, self.tokenizer_name, self.target_vocab_size,
                         RECIPE_VERSION, self.seed, self.val_fraction, self.test_fraction, self.labels],
        }
        key = hashlib.sha256(json.dumps(identity).encode("utf-8")).hexdigest()[:24]
        return self._cache() / "text-data" / f"{key}.json"

    def _cache(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else user_cache_dir()

    def _split(self, name: str) -> Split:
        """Split ``name`` with label ids: an official test split is read alone; anything else needs every
        split (read and carved once)."""
        official_test = not self._is_listops() and set(self.source.readers) == {"train", "test"}
        if self._labelled is None and name == "test" and official_test:
            return self._with_label_ids(self.source.read("test"))
        self._read_labelled()
        if name not in self._labelled:
            raise ValueError(f"Text data: {self.source.description} holds unlabelled texts and no test file: they "
                             f"are a corpus, carved into train and validation ({self.val_fraction:.0%}, data.seed "
                             f"{self.seed}) only; evaluate with validate, or put a test.txt beside a train.txt.")
        return self._labelled[name]

    def _with_label_ids(self, split: Split) -> Split:
        """``split`` with label ids in place of its labels (the classifier's); unchanged for texts alone."""
        if not self.labels:
            return split
        return Split(split.texts, label_ids(split, self._class_names, self._labels_by_name), split.source)

    def _read_labelled(self) -> None:
        """Read and carve every split, with label ids; set the class names, and the tokenizer if unset."""
        if self._labelled is not None:
            return
        if self._is_listops():
            self._labelled = self._generate_listops()
            return
        raw = {name: self.source.read(name) for name in self.source.readers}
        splits = self._carve(raw.get("train"), raw.get("test"))
        if self._class_names is None and not self.labels:
            self._class_names = []
        if self._class_names is None:  # else the data card's or the checkpoint's
            reference = raw["train"] if "train" in raw else raw["test"]
            self._class_names = class_names_of(reference, self.source.class_names)
            self._labels_by_name = all(isinstance(v, str) for v in reference.labels)
        self._labelled = {name: self._with_label_ids(split) for name, split in zip(SPLITS, splits) if split is not None}
        if self._text_tokenizer is None:
            self._text_tokenizer = build_tokenizer(
                self.tokenizer_name, splits[0].texts, self.target_vocab_size, self._cache()
            )

    def _generate_listops(self) -> dict[str, Split]:
        """Generated ListOps; train, validation and test from disjoint seeds, duplicates of training
        expressions removed from validation and test. Expressions are never longer than ``max_length``
        (a truncated expression would keep the label of the whole one)."""
        sizes = dict(zip(SPLITS, (self.listops_size, self.listops_size // 4, self.listops_size // 4)))
        longest = min(LISTOPS_MAX_LENGTH, self.max_length)
        splits = {}
        for offset, (name, size) in enumerate(sizes.items()):
            pairs = generate_listops(size, LISTOPS_MAX_DEPTH, LISTOPS_MAX_ARGS, longest, seed=3 * self.seed + offset)
            splits[name] = Split([t for t, _ in pairs], [y for _, y in pairs], f"ListOps {name}")
        seen = set(splits["train"].texts)
        for name in ("val", "test"):
            split = splits[name]
            keep = [i for i, t in enumerate(split.texts) if t not in seen]
            splits[name] = Split([split.texts[i] for i in keep], [split.labels[i] for i in keep], split.source)
        rank_zero_info(
            "Text data: no data.root / data.hub_id given, so using generated ListOps (depth <= "
            f"{LISTOPS_MAX_DEPTH}, <= {LISTOPS_MAX_ARGS} arguments, <= {longest} tokens, its own "
            f"word-level vocabulary; data.tokenizer is not used). For real text: --data.root "
            "../shared/data/imdb (IMDb), --data.root ../shared/data/ag_news (AG-News, test split only), "
            "or --data.hub_id stanfordnlp/imdb | ag_news when online."
        )
        return splits

    def _carve(self, train: Split | None, test: Split | None) -> tuple[Split, Split, Split | None]:
        """Train, validation and test splits; carved parts drawn with ``seed``. A labelled layout is carved as the
        classifier carves it, texts alone or not; a corpus (`_carve_corpus`) into train and validation."""
        rng = np.random.default_rng(self.seed)
        pool = train if train is not None else test
        if not pool.labelled:
            return self._carve_corpus(train, test, rng)
        if train is not None and test is not None:
            train, val = _take(train, self.val_fraction, rng)
            return train, val, test
        rest, carved_test = _take(pool, self.test_fraction, rng)
        carved_train, val = _take(rest, self.val_fraction, rng)
        if train is None:
            rank_zero_warn(
                f"Text data: {self.source.description} has only a TEST split ({pool.source}); train / validation / "
                f"test are all carved from it (seed {self.seed}, test {self.test_fraction:.0%}, validation "
                f"{self.val_fraction:.0%} of the rest). Accuracy on this split is NOT comparable with "
                "published numbers on the official split; say so when reporting."
            )
        else:
            rank_zero_info(
                f"Text data: {self.source.description} has no test split; test ({self.test_fraction:.0%}) and "
                f"validation ({self.val_fraction:.0%} of the rest) are carved from {pool.source} with seed "
                f"{self.seed}."
            )
        return carved_train, val, carved_test

    def _carve_corpus(self, train: Split | None, test: Split | None,
                      rng: np.random.Generator) -> tuple[Split, Split, Split | None]:
        """A corpus of texts alone (masked-LM pretraining): ``val_fraction`` of its training texts validate (drawn
        with ``seed``), the rest train; its test file, if any, is the test split. A test file alone is refused:
        pretraining on it would train on test texts (naming the file itself as data.root asks for that)."""
        if train is None:
            raise ValueError(f"Text data: {self.source.description} has only a test file ({test.source}), which "
                             "would pretrain on test texts; to pretrain on it anyway, give that file as data.root.")
        rest, val = _take(train, self.val_fraction, rng)
        rank_zero_info(f"Text data: {self.source.description} holds texts without labels: validation "
                       f"({self.val_fraction:.0%}) carved from {train.source} with seed {self.seed}.")
        return rest, val, test

    def _encode(self, split: Split, name: str, rows: list[int] | None = None) -> EncodedTexts:
        """Tokenise and truncate; texts that give no token are skipped (counted in the log), a labelled split left
        with none is an error naming it. Validation and test samples are shuffled once with ``seed`` (see the
        module docstring)."""
        encoded = self._text_tokenizer.encode_batch(split.texts)
        keep = [i for i, ids in enumerate(encoded) if ids]
        where = f"{name} split ({split.source})"
        if not keep and rows is None:
            raise ValueError(f"Text data: the {where} holds no text (none, or none that gives a token).")
        if len(keep) < len(encoded):
            rank_zero_warn(f"Text data: skipped {len(encoded) - len(keep)} texts with no token in {where}.")
        if name in ("val", "test"):
            keep = [keep[i] for i in np.random.default_rng(self.seed).permutation(len(keep))]
        ids = [np.asarray(encoded[i][: self.max_length], dtype=np.int64) for i in keep]
        truncated = sum(len(encoded[i]) > self.max_length for i in keep)
        if truncated:
            rank_zero_info(
                f"Text data: {truncated} of {len(keep)} texts of the {where} truncated to {self.max_length} tokens."
            )
        return EncodedTexts(
            ids,
            [split.texts[i] for i in keep],
            [split.labels[i] for i in keep] if rows is None and self.labels else None,
            None if rows is None else [rows[i] for i in keep],
        )

    def _encode_predict(self) -> EncodedTexts:
        """The texts of ``predict_path`` (read when the data module was built)."""
        if self._predict_texts is None:
            raise ValueError("predict needs data.predict_path (.txt, one text per line, or csv/jsonl/json/parquet).")
        texts, rows = self._predict_texts
        dataset = self._encode(Split(texts, [None] * len(texts), str(self.predict_path)), "predict", rows)
        if not dataset.ids:
            raise ValueError(f"data.predict_path {self.predict_path}: no text gives a token with this tokenizer.")
        rank_zero_info(f"Text data: predict {len(dataset)} texts of {self.predict_path}; tokenizer "
                       f"{self._text_tokenizer.kind} ({self.vocab_size} ids).")
        return dataset

    def _log_summary(self, names: list[str]) -> None:
        datasets = [getattr(self, f"{name}_dataset") for name in names]
        sizes = ", ".join(f"{name} {len(d)}" for name, d in zip(names, datasets))
        description = "generated ListOps" if self._is_listops() else self.source.description
        mean = float(np.mean(datasets[0].lengths)) if datasets[0].lengths else 0.0
        classes = f"{self.num_classes} classes {self._class_names[:10]}" if self.labels else "texts alone"
        rank_zero_info(
            f"Text data: {description}: {sizes}; {classes}; tokenizer "
            f"{self._text_tokenizer.kind} ({self.vocab_size} ids); mean {names[0]} length {mean:.0f} tokens "
            f"(max_length {self.max_length})."
        )
        if self.labels and self.num_classes == 1:
            rank_zero_warn(f"Text data: {description} holds one class ({self._class_names[0]!r}): a classifier of one "
                           "class scores 1.0 without learning anything; check data.label_column and the data")


class MaskedTextDataModule(TextDataModule):
    """The texts of the same sources, labels never read, for masked-LM pretraining (`--task text_mlm`); every
    option is `TextDataModule`'s.

    Unlabelled sources are accepted: a ``.txt`` file (one text per line), a folder of ``.txt`` files (every line
    one text, e.g. ``aclImdb/train/unsup``: IMDb's 50,000 unlabelled reviews), ``train.txt`` (+ ``test.txt``),
    csv/jsonl/json/parquet with a text column only (or with ``data.label_column=null``). Such a corpus is carved
    into train and validation (``val_fraction``, with ``seed``); its test split is a test file beside it, or none.
    A labelled layout (IMDb folders, class folders, AG-News, tables with the label column) is carved exactly as
    `--task text` carves it from the same data.* options, its labels unread: the classifier's validation and test
    texts never pretrain the encoder, and the tokenizer, trained on the same training texts, is the classifier's.
    Nothing else is read: IMDb's ``unsup`` folder only when named as data.root, a test split only by test runs.

    The tokenizer is trained on the pretraining's training texts. A classifier started from the checkpoint
    (``--model.init_from``) must encode with it, or its embeddings mean other tokens (``init_from`` refuses a
    checkpoint whose tokenizer is not the data's): on the same data.root and data.* options it is the same;
    pretrained on another corpus, give the classifier ``--data.tokenizer=<the pretraining's checkpoint>`` (the
    Hugging Face way: a fine-tuning takes its pretrained model's tokenizer), which also keeps its vocabulary. That
    choice (the pretraining's tokenizer rather than the labelled split's) fits a corpus larger than the labelled
    data, which is why one pretrains on it; to pretrain with a given tokenizer instead, name its file (a
    classifier's ``.ckpt`` or a ``tokenizer.json``) as data.tokenizer here.
    """

    labels = False


def _take(split: Split, fraction: float, rng: np.random.Generator) -> tuple[Split, Split]:
    """Split off a random ``fraction`` (at least one sample, at least one left)."""
    n = len(split.texts)
    if n < 2:
        raise ValueError(f"{split.source}: {n} usable texts, too few to split.")
    count = min(max(1, round(n * fraction)), n - 1)
    order = rng.permutation(n)
    taken, rest = sorted(order[:count].tolist()), sorted(order[count:].tolist())

    def subset(indices: list[int]) -> Split:
        return replace(split, texts=[split.texts[i] for i in indices], labels=[split.labels[i] for i in indices])

    return subset(rest), subset(taken)
