"""TextDataModule: text classification batches from local files, the HF hub, or generated ListOps.

Sources (``data.root`` or ``data.hub_id``; neither = generated ListOps):
- AG-News CSV folder: ``train.csv`` / ``test.csv`` without header (class 1-4, title, description; text =
  title + ". " + description, labels 0-3), class names from ``classes.txt`` if present.
- IMDb folders: ``aclImdb/{train,test}/{pos,neg}/*.txt`` (root = ``aclImdb`` or its parent).
- generic folder: ``train.{csv,jsonl,json,parquet}`` (+ ``test.*``) with a text and a label column;
  string labels map to ids by sorted unique training labels, integer labels are used as ids.
- one csv/jsonl/json/parquet file: the training pool (validation and test are carved from it).
- ``hub_id``: ``datasets.load_dataset(hub_id)`` splits ``train`` (+ ``test``), online users only.

Splits: validation is carved from train with ``seed``; test is the official test split. A source with
only a train split gets its test carved from it too; one with only a test split (the offline AG-News)
gets train, validation and test carved from it, with a warning that the numbers are not comparable with
published ones. ``<br />`` tags (IMDb) become spaces; empty texts are skipped and counted.

The tokenizer (bytes | bpe | wordpiece | a pretrained HF name) is built from the training split only;
bpe/wordpiece are cached next to the data (see `tokenizer.build_tokenizer`). All texts are tokenised
once, truncated to ``max_length``, and batched by length (`LengthBucketBatchSampler`, DDP-aware through
the trainer's global rank and world size: run the Trainer with ``use_distributed_sampler=False``).

Batches are dicts: ``input_ids`` (B, L) int64, ``padding_mask`` (B, L) bool (True at padding), ``labels``
(B,) int64, padded to the longest sample of the batch; predict batches carry ``input_ids``,
``padding_mask``, ``texts`` (list of str) and ``index`` (B,) int64, the 0-based line / row of each text
in ``predict_path``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Dataset

from infomamba.tasks.sampling import LengthBucketBatchSampler
from infomamba.tasks.text.listops import NUM_CLASSES as LISTOPS_CLASSES
from infomamba.tasks.text.listops import generate_listops, listops_tokenizer
from infomamba.tasks.text.tokenizer import TextTokenizer, build_tokenizer, clean_text, default_cache_dir

SPLITS = ("train", "val", "test")
TABLE_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
LAYOUTS = (
    "Accepted data.root layouts: (1) AG-News CSV folder: train.csv/test.csv without header (class 1-4, "
    "title, description), optional classes.txt; (2) IMDb folders: aclImdb/{train,test}/{pos,neg}/*.txt "
    "(root = aclImdb or its parent); (3) a folder with train.{csv,jsonl,json,parquet} (and optionally "
    "test.*) holding text and label columns; (4) a single csv/jsonl/json/parquet file (validation and "
    "test carved from it). Or data.hub_id=<Hugging Face dataset id> when online."
)
# ListOps defaults: small enough that a CPU run of a few minutes learns something.
LISTOPS_MAX_DEPTH = 5
LISTOPS_MAX_ARGS = 6
LISTOPS_MAX_LENGTH = 200


@dataclass
class _Split:
    """Texts with their labels (raw values: str or int ids) and where they came from."""

    texts: list[str]
    labels: list[Any]
    source: str


@dataclass
class _Raw:
    """What a source provides: a train and/or a test split, class names if the source names its ids."""

    train: _Split | None
    test: _Split | None
    class_names: list[str] | None
    description: str


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
    """Pads a list of `EncodedTexts` items to the longest one (``pad_id``, mask True at padding)."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        longest = max(len(item["input_ids"]) for item in items)
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
            tree, a folder with train/test csv|jsonl|json|parquet files, or one such file. None with
            ``hub_id`` None: generated ListOps.
        hub_id: Hugging Face dataset id, e.g. ``ag_news`` or ``stanfordnlp/imdb`` (needs ``datasets``
            and network). Exclusive with ``root``.
        text_column: column holding the text (csv/jsonl/json/parquet, hub).
        label_column: column holding the label (strings or integer ids).
        tokenizer: ``bytes`` | ``bpe`` | ``wordpiece`` (trained on the training split) or a pretrained
            HF tokenizer name (needs ``transformers``). ListOps always uses its own word-level vocabulary.
        vocab_size: target vocabulary size of a trained bpe/wordpiece tokenizer. The real size (embedding
            rows) is the ``vocab_size`` property after loading.
        max_length: texts are truncated to this many tokens (the head is kept).
        batch_size: samples per batch (ignored when ``max_tokens`` is set).
        max_tokens: padding-aware token budget per batch (samples x longest sample); replaces
            ``batch_size`` when set; must be >= the longest sample (<= ``max_length``).
        num_workers: DataLoader worker processes.
        val_fraction: share of the training split carved off as validation.
        test_fraction: share carved off as test when the source has no test split (single file, train
            only) or no train split (offline AG-News, whose only split is test).
        seed: seed of the carved splits, of the batch shuffling (plus the epoch) and of ListOps.
        predict_path: texts for ``predict``: a .txt file (one text per line) or csv/jsonl/json/parquet
            with ``text_column``.
        listops_size: number of generated ListOps training expressions (validation and test a quarter
            of it each).
        cache_dir: where trained tokenizers are cached; None: ``<root>/.infomamba_cache`` if writable,
            else ``~/.cache/infomamba``.
    """

    def __init__(
        self,
        root: str | None = None,
        hub_id: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        tokenizer: str = "bpe",
        vocab_size: int = 8000,
        max_length: int = 512,
        batch_size: int = 32,
        max_tokens: int | None = None,
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
        if max_length < 1 or batch_size < 1 or listops_size < 4:
            raise ValueError("Need max_length >= 1, batch_size >= 1 and listops_size >= 4.")
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
        self.num_workers = num_workers
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.predict_path = predict_path
        self.listops_size = listops_size
        self.cache_dir = cache_dir
        self._text_tokenizer: TextTokenizer | None = None
        self.train_dataset: EncodedTexts | None = None
        self.val_dataset: EncodedTexts | None = None
        self.test_dataset: EncodedTexts | None = None
        self.predict_dataset: EncodedTexts | None = None
        self._class_names: list[str] | None = None

    # ----------------------------------------------------------------------------------- properties
    @property
    def text_tokenizer(self) -> TextTokenizer:
        """The tokenizer (trained on the training split, or ListOps' vocabulary); loads the data on first
        use. The model keeps it in its checkpoint."""
        self._ensure_loaded()
        return self._text_tokenizer

    @property
    def vocab_size(self) -> int:
        """Number of token ids (embedding rows); loads the data on first use."""
        self._ensure_loaded()
        return self._text_tokenizer.vocab_size

    @property
    def pad_id(self) -> int:
        """Id used for padding."""
        self._ensure_loaded()
        return self._text_tokenizer.pad_id

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def class_names(self) -> list[str]:
        """Class names, index = label id."""
        self._ensure_loaded()
        return list(self._class_names)

    # ------------------------------------------------------------------------------- Lightning hooks
    def prepare_data(self) -> None:
        """Rank 0 loads (downloads for a hub id) and trains / caches the tokenizer, so that the other
        ranks find the cached tokenizer in `setup`."""
        self._ensure_loaded()

    def setup(self, stage: str | None = None) -> None:
        """Load the splits and the tokenizer (once); for ``predict`` also read ``predict_path``."""
        self._ensure_loaded()
        if stage == "predict" and self.predict_dataset is None:
            self.predict_dataset = self._read_predict()

    def train_dataloader(self) -> DataLoader:
        self._ensure_loaded()
        return self._loader(self.train_dataset, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        self._ensure_loaded()
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        self._ensure_loaded()
        return self._loader(self.test_dataset, shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        self.setup("predict")
        return self._loader(self.predict_dataset, shuffle=False)

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
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            collate_fn=TextCollator(self.pad_id),
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )

    # ------------------------------------------------------------------------------------ loading
    def _ensure_loaded(self) -> None:
        """Read the source, carve the splits, build the tokenizer and tokenise (once)."""
        if self.train_dataset is not None:
            return
        if self.root is None and self.hub_id is None:
            self._load_listops()
            return
        raw = self._read_hub() if self.hub_id is not None else _read_root(Path(self.root), self)
        train, val, test = self._carve(raw)
        label_ids, class_names = _encode_labels(raw, [train, val, test])
        cache = self.cache_dir or default_cache_dir(self.root)
        self._text_tokenizer = build_tokenizer(self.tokenizer_name, train.texts, self.target_vocab_size, cache)
        self._class_names = class_names
        self.train_dataset, self.val_dataset, self.test_dataset = (
            self._encode(split, ids, name) for split, ids, name in zip((train, val, test), label_ids, SPLITS)
        )
        self._log_summary(raw.description)

    def _load_listops(self) -> None:
        """Generated ListOps; train, validation and test from disjoint seeds, duplicates of training
        expressions removed from validation and test. Expressions are never longer than ``max_length``
        (a truncated expression would keep the label of the whole one)."""
        sizes = dict(zip(SPLITS, (self.listops_size, self.listops_size // 4, self.listops_size // 4)))
        longest = min(LISTOPS_MAX_LENGTH, self.max_length)
        splits = {}
        for offset, (name, size) in enumerate(sizes.items()):
            pairs = generate_listops(size, LISTOPS_MAX_DEPTH, LISTOPS_MAX_ARGS, longest, seed=3 * self.seed + offset)
            splits[name] = _Split([t for t, _ in pairs], [y for _, y in pairs], f"ListOps {name}")
        seen = set(splits["train"].texts)
        for name in ("val", "test"):
            keep = [i for i, t in enumerate(splits[name].texts) if t not in seen]
            split = splits[name]
            splits[name] = _Split([split.texts[i] for i in keep], [split.labels[i] for i in keep], split.source)
        self._text_tokenizer = listops_tokenizer()
        self._class_names = [str(d) for d in range(LISTOPS_CLASSES)]
        self.train_dataset, self.val_dataset, self.test_dataset = (
            self._encode(splits[name], splits[name].labels, name) for name in SPLITS
        )
        rank_zero_info(
            "Text data: no data.root / data.hub_id given, so using generated ListOps (depth <= "
            f"{LISTOPS_MAX_DEPTH}, <= {LISTOPS_MAX_ARGS} arguments, <= {longest} tokens, its own "
            f"word-level vocabulary; data.tokenizer is not used). For real text: --data.root "
            "../shared/data/imdb (IMDb), --data.root ../shared/data/ag_news (AG-News, test split only), "
            "or --data.hub_id stanfordnlp/imdb | ag_news when online."
        )
        self._log_summary("generated ListOps")

    def _read_hub(self) -> _Raw:
        """``datasets.load_dataset(hub_id)``: its train and test splits."""
        try:
            import datasets
        except ImportError as error:
            raise ImportError(
                f"data.hub_id={self.hub_id!r} needs `pip install datasets` (and network access); offline, "
                f"point data.root at local files instead. {LAYOUTS}"
            ) from error
        loaded = datasets.load_dataset(self.hub_id)
        if "train" not in loaded and "test" not in loaded:
            raise ValueError(f"Hub dataset {self.hub_id!r} has no train or test split (has {list(loaded)}).")
        splits = {}
        class_names = None
        for name in ("train", "test"):
            if name not in loaded:
                continue
            part = loaded[name]
            source = f"hub {self.hub_id} [{name}]"
            _check_columns(part.column_names, (self.text_column, self.label_column), source)
            labels = _label_values(list(part[self.label_column]), source, self.label_column)
            splits[name] = _clean(_Split(list(part[self.text_column]), labels, source))
            feature = part.features[self.label_column]
            if class_names is None and hasattr(feature, "names"):
                class_names = list(feature.names)
        return _Raw(splits.get("train"), splits.get("test"), class_names, f"hub dataset {self.hub_id}")

    def _carve(self, raw: _Raw) -> tuple[_Split, _Split, _Split]:
        """Train, validation and test splits; carved parts drawn with ``seed``."""
        rng = np.random.default_rng(self.seed)
        if raw.train is not None and raw.test is not None:
            train, val = _take(raw.train, self.val_fraction, rng)
            return train, val, raw.test
        pool = raw.train if raw.train is not None else raw.test
        rest, test = _take(pool, self.test_fraction, rng)
        train, val = _take(rest, self.val_fraction, rng)
        if raw.train is None:
            rank_zero_warn(
                f"Text data: {raw.description} has only a TEST split ({pool.source}); train / validation / "
                f"test are all carved from it (seed {self.seed}, test {self.test_fraction:.0%}, validation "
                f"{self.val_fraction:.0%} of the rest). Accuracy on this split is NOT comparable with "
                "published numbers on the official split; say so when reporting."
            )
        else:
            rank_zero_info(
                f"Text data: {raw.description} has no test split; test ({self.test_fraction:.0%}) and "
                f"validation ({self.val_fraction:.0%} of the rest) are carved from {pool.source} with seed "
                f"{self.seed}."
            )
        return train, val, test

    def _encode(
        self, split: _Split, label_ids: list[int] | None, name: str, rows: list[int] | None = None
    ) -> EncodedTexts:
        """Tokenise and truncate; texts that give no token are skipped (counted in the log)."""
        encoded = self._text_tokenizer.encode_batch(split.texts)
        keep = [i for i, ids in enumerate(encoded) if ids]
        where = f"{name} split ({split.source})"
        if len(keep) < len(encoded):
            rank_zero_warn(f"Text data: skipped {len(encoded) - len(keep)} texts with no token in {where}.")
        ids = [np.asarray(encoded[i][: self.max_length], dtype=np.int64) for i in keep]
        truncated = sum(len(encoded[i]) > self.max_length for i in keep)
        if truncated:
            rank_zero_info(
                f"Text data: {truncated} of {len(keep)} texts of the {where} truncated to {self.max_length} tokens."
            )
        return EncodedTexts(
            ids,
            [split.texts[i] for i in keep],
            None if label_ids is None else [label_ids[i] for i in keep],
            None if rows is None else [rows[i] for i in keep],
        )

    def _read_predict(self) -> EncodedTexts:
        """``predict_path``: .txt (one text per line) or a table with ``text_column``."""
        if self.predict_path is None:
            raise ValueError("predict needs data.predict_path (.txt, one text per line, or csv/jsonl/json/parquet).")
        path = Path(self.predict_path)
        if not path.is_file():
            raise FileNotFoundError(f"data.predict_path {path} does not exist.")
        if path.suffix == ".txt":
            texts = path.read_text(encoding="utf-8").splitlines()
        elif path.suffix in TABLE_SUFFIXES:
            frame = _read_frame(path)
            _check_columns(list(frame.columns), (self.text_column,), str(path))
            texts = frame[self.text_column].tolist()
        else:
            raise ValueError(f"data.predict_path {path}: use .txt or one of {TABLE_SUFFIXES}.")
        kept, rows = _drop_empty([clean_text(t) for t in texts], list(range(len(texts))), str(path))
        return self._encode(_Split(kept, [None] * len(kept), str(path)), None, "predict", rows)

    def _log_summary(self, description: str) -> None:
        datasets = (self.train_dataset, self.val_dataset, self.test_dataset)
        sizes = ", ".join(f"{name} {len(d)}" for name, d in zip(SPLITS, datasets))
        mean = float(np.mean(self.train_dataset.lengths))
        rank_zero_info(
            f"Text data: {description}: {sizes}; {self.num_classes} classes {self._class_names[:10]}; tokenizer "
            f"{self._text_tokenizer.kind} ({self.vocab_size} ids); mean train length {mean:.0f} tokens "
            f"(max_length {self.max_length})."
        )


# ---------------------------------------------------------------------------------------- readers
def _read_root(root: Path, dm: TextDataModule) -> _Raw:
    """Detect the layout of ``root`` and read its train / test splits."""
    if not root.exists():
        raise FileNotFoundError(f"data.root {root} does not exist. {LAYOUTS}")
    if root.is_file():
        if root.suffix not in TABLE_SUFFIXES:
            raise ValueError(f"data.root {root}: unsupported file type {root.suffix!r}. {LAYOUTS}")
        return _Raw(_read_table(root, dm), None, _class_names_file(root.parent), f"file {root}")
    for imdb in (root, root / "aclImdb"):
        if (imdb / "train" / "pos").is_dir() or (imdb / "test" / "pos").is_dir():
            train, test = (_read_imdb_folder(imdb / s) if (imdb / s).is_dir() else None for s in ("train", "test"))
            return _Raw(train, test, None, f"IMDb folders {imdb}")
    files = {split: _split_file(root, split) for split in ("train", "test")}
    if files["train"] is None and files["test"] is None:
        found = sorted(p.name for p in root.iterdir())[:20]
        raise FileNotFoundError(f"data.root {root}: no recognised layout (found {found}). {LAYOUTS}")
    train, test = (None if files[s] is None else _read_table(files[s], dm) for s in ("train", "test"))
    return _Raw(train, test, _class_names_file(root), f"folder {root}")


def _split_file(root: Path, split: str) -> Path | None:
    """The one ``<split>.<csv|jsonl|json|parquet>`` in ``root`` (error if several)."""
    found = [root / f"{split}{suffix}" for suffix in TABLE_SUFFIXES if (root / f"{split}{suffix}").is_file()]
    if len(found) > 1:
        raise ValueError(f"data.root {root}: several {split} files {[p.name for p in found]}; keep one.")
    return found[0] if found else None


def _read_frame(path: Path) -> pd.DataFrame:
    """A csv (with header) / jsonl / json / parquet file as a DataFrame."""
    if path.suffix == ".csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True)
    if path.suffix == ".json":
        try:
            return pd.read_json(path)
        except ValueError:
            return pd.read_json(path, lines=True)
    return pd.read_parquet(path)


def _is_agnews_csv(path: Path) -> bool:
    """A headerless csv of 3 fields whose first field is an integer class (AG-News original layout)."""
    if path.suffix != ".csv":
        return False
    head = pd.read_csv(path, header=None, nrows=5, dtype=str, keep_default_na=False)
    return head.shape[1] == 3 and bool(head[0].str.fullmatch(r"\d+").all())


def _class_names_file(folder: Path) -> list[str] | None:
    """Names of integer classes from ``folder/classes.txt`` (AG-News; one per line), if present."""
    classes = folder / "classes.txt"
    if not classes.is_file():
        return None
    return [line.strip() for line in classes.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_table(path: Path, dm: TextDataModule) -> _Split:
    """One split from a table file (AG-News headerless csv detected automatically)."""
    if _is_agnews_csv(path):
        names = ["label", "title", "description"]
        frame = pd.read_csv(path, header=None, names=names, dtype=str, keep_default_na=False)
        classes = frame["label"].astype(int) - 1
        if (classes < 0).any():
            raise ValueError(f"{path}: AG-News classes start at 1, found {int(classes.min()) + 1}.")
        texts = (frame["title"].str.strip() + ". " + frame["description"].str.strip()).tolist()
        return _clean(_Split(texts, classes.tolist(), str(path)))
    frame = _read_frame(path)
    _check_columns(list(frame.columns), (dm.text_column, dm.label_column), str(path))
    labels = _label_values(frame[dm.label_column].tolist(), str(path), dm.label_column)
    return _clean(_Split(frame[dm.text_column].tolist(), labels, str(path)))


def _read_imdb_folder(folder: Path) -> _Split:
    """``folder/{neg,pos}/*.txt`` (files sorted by name), labels "neg" / "pos"."""
    texts, labels = [], []
    for label in ("neg", "pos"):
        if not (folder / label).is_dir():
            raise FileNotFoundError(f"IMDb layout: {folder / label} is missing. {LAYOUTS}")
        for file in sorted((folder / label).glob("*.txt")):
            texts.append(file.read_text(encoding="utf-8"))
            labels.append(label)
    return _clean(_Split(texts, labels, str(folder)))


def _check_columns(columns: list[str], needed: tuple[str, ...], source: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise KeyError(
            f"{source}: column(s) {missing} not found; columns are {list(columns)}. Set data.text_column / "
            "data.label_column."
        )


def _label_values(values: list[Any], source: str, column: str) -> list[Any]:
    """Labels as all-int ids or all-str names; missing, mixed or fractional labels are errors."""
    missing = sum(v is None or (isinstance(v, float) and np.isnan(v)) for v in values)
    if missing:
        raise ValueError(f"{source}: {missing} rows have no label in column {column!r}.")
    if all(isinstance(v, str) for v in values):
        return values
    numeric = (int, np.integer, float, np.floating)
    if all(isinstance(v, numeric) and not isinstance(v, bool) and float(v).is_integer() for v in values):
        return [int(v) for v in values]
    raise ValueError(f"{source}: labels in column {column!r} must be all strings or all integers.")


def _clean(split: _Split) -> _Split:
    """The split with cleaned texts, empty ones skipped (counted)."""
    texts, labels = _drop_empty([clean_text(t) for t in split.texts], split.labels, split.source)
    return _Split(texts, labels, split.source)


def _drop_empty(texts: list[str], others: list[Any], source: str) -> tuple[list[str], list[Any]]:
    """Non-empty texts with their ``others`` entries; logs how many were skipped."""
    keep = [i for i, t in enumerate(texts) if t]
    if len(keep) < len(texts):
        rank_zero_warn(f"Text data: skipped {len(texts) - len(keep)} empty texts in {source}.")
    return [texts[i] for i in keep], [others[i] for i in keep]


def _take(split: _Split, fraction: float, rng: np.random.Generator) -> tuple[_Split, _Split]:
    """Split off a random ``fraction`` (at least one sample, at least one left)."""
    n = len(split.texts)
    if n < 2:
        raise ValueError(f"{split.source}: {n} usable texts, too few to split.")
    count = min(max(1, round(n * fraction)), n - 1)
    order = rng.permutation(n)
    taken, rest = sorted(order[:count].tolist()), sorted(order[count:].tolist())

    def subset(indices: list[int]) -> _Split:
        return _Split([split.texts[i] for i in indices], [split.labels[i] for i in indices], split.source)

    return subset(rest), subset(taken)


def _encode_labels(raw: _Raw, splits: list[_Split]) -> tuple[list[list[int]], list[str]]:
    """Label ids of every split and the class names.

    String labels: sorted unique labels of the source's training split (the pool when carved) -> ids; a
    test label absent from training is an error. Integer labels are ids, names from the source or str(id).
    """
    reference = raw.train if raw.train is not None else raw.test
    if all(isinstance(v, str) for v in reference.labels):
        names = sorted(set(reference.labels))
        lookup = {name: i for i, name in enumerate(names)}
        for split in splits:
            for value in split.labels:
                if value not in lookup:
                    raise ValueError(
                        f"{split.source}: label {value!r} does not occur in the training labels {names}."
                    )
        return [[lookup[v] for v in split.labels] for split in splits], names
    count = len(raw.class_names) if raw.class_names else max(reference.labels) + 1
    names = raw.class_names or [str(i) for i in range(count)]
    for split in splits:
        for value in split.labels:
            if not isinstance(value, (int, np.integer)) or not 0 <= value < count:
                raise ValueError(
                    f"{split.source}: label {value!r} is not a class id of the training labels (0..{count - 1})."
                )
    return [list(map(int, split.labels)) for split in splits], names
