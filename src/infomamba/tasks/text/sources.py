"""Text sources: find the layout of ``data.root`` (or open a hub dataset), read its splits.

Layouts (`open_source`), tried in this order (those marked *unlabelled* only with ``labels=False``, the masked-LM
pretraining's texts; the classifier refuses them in one line naming the file and the missing labels):
- IMDb folders: ``aclImdb/{train,test}/{pos,neg}/*.txt`` (root = ``aclImdb`` or its parent); ``unsup``
  and the release's other files are not read.
- table folder: ``train.{csv,jsonl,json,parquet,txt}`` (+ ``test.*``) with a text and a label column; string
  labels map to ids by sorted unique training labels, integer labels are ids. AG-News's headerless csv
  (class 1-4, title, description; text = title + ". " + description, or the one of them a row has; labels
  0-3) is recognised by its first row, as is Kaggle's copy of it, whose header is ``Class Index,Title,
  Description``; class names from ``classes.txt`` if present. A validation split beside ``train`` (``val``,
  ``valid``, ``validation``, ``dev``: a table file or a class-folder tree) is not read, with a warning.
  *Unlabelled*: ``train.txt`` (one text per line), or tables without the label column.
- class folders: ``root/train/<class>/*`` (+ ``root/test/<class>/*``, the 20 Newsgroups layout) or
  ``root/<class>/*`` (one pool): every non-hidden file of a class folder is one text, labelled with the
  folder's name; class names are the sorted folder names.
- one csv/jsonl/json/parquet file: the training pool. *Unlabelled*: a .txt file, one text per line, or a table
  without the label column.
- *unlabelled* folder of .txt files (``aclImdb/train/unsup``, a domain corpus): every line of every non-hidden
  ``*.txt`` file is one text (as Hugging Face's ``text`` loader reads them), files in sorted order; one pool.
- ``hub_id``: ``datasets.load_dataset(hub_id)`` splits ``train`` (+ ``test``), online users only.

With ``labels=False`` labels are not read (a table's label column is not checked; a class folder's name is kept
but unused) and each split says whether its layout labels its texts (`Split.labelled`): the masked-LM data carves
a labelled layout exactly as the classifier does, so that the classifier's validation and test texts never
pretrain it.

A `Source` reads each official split only when asked (`Source.read`), so a run that needs the test split
alone reads nothing else; ``Source.files`` lists the files that hold a local source's data. Text files
are UTF-8 (a leading byte-order mark is dropped); other bytes are an error naming the file and line, except
in class folders (replaced, counted) and in a .txt predict file (the line left out, counted and named).
Texts are cleaned (`clean_text`); empty ones are skipped and counted.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from lightning.pytorch.utilities import rank_zero_warn

from infomamba.tasks.paths import is_os_metadata, missing
from infomamba.tasks.text.tokenizer import clean_text

SPLIT_FILES = ("train", "test")
TABLE_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
SPLIT_SUFFIXES = (*TABLE_SUFFIXES, ".txt")
IMDB_CLASSES = ("neg", "pos")
VALIDATION_NAMES = ("val", "valid", "validation", "dev")
AGNEWS_HEADER = ["class index", "title", "description"]  # the header of Kaggle's copy of AG-News
LAYOUTS = (
    "Accepted data.root layouts: (1) AG-News CSV folder: train.csv/test.csv without header (class 1-4, "
    "title, description) or with Kaggle's header (Class Index,Title,Description), optional classes.txt; (2) IMDb "
    "folders: aclImdb/{train,test}/{pos,neg}/*.txt "
    "(root = aclImdb or its parent); (3) a folder with train.{csv,jsonl,json,parquet} (and optionally "
    "test.*) holding text and label columns; (4) class folders: root/<class>/* or root/train/<class>/* "
    "(+ root/test/<class>/*), one text per file; (5) a single csv/jsonl/json/parquet file (validation and "
    "test carved from it). Or data.hub_id=<Hugging Face dataset id> when online. Unlabelled texts (--task "
    "text_mlm only): a .txt file (one text per line), a folder of .txt files, a table without the label column."
)


@dataclass
class Split:
    """Texts with their labels (raw values: str or int ids; None where not read) and where they came from;
    ``label_base``: the value the file writes for label id 0 (AG-News classes start at 1), for messages;
    ``labelled``: whether the layout gives each text a label (False: a corpus of texts alone)."""

    texts: list[str]
    labels: list[Any]
    source: str
    label_base: int = 0
    labelled: bool = True


@dataclass
class Source:
    """One data source: a reader per official split (``train`` and/or ``test``).

    ``files``: the local files holding the data (None for a hub dataset). ``class_names``: names the
    source gives its integer label ids (``classes.txt``, a hub ClassLabel), if any.
    """

    description: str
    readers: dict[str, Callable[[], Split]]
    files: list[Path] | None
    class_names: list[str] | None = None

    def read(self, split: str) -> Split:
        """The official ``split`` (cleaned; empty texts skipped and counted)."""
        return self.readers[split]()


def open_source(root: str | None, hub_id: str | None, text_column: str, label_column: str | None,
                labels: bool = True) -> Source:
    """The source at ``root`` (layout detected from names only; nothing is read yet) or on the hub. ``labels``:
    read the labels (the classifier); False: the texts alone (masked-LM pretraining), unlabelled layouts too.
    ``label_column`` None: a table's texts are a corpus (no label read even if the column is there)."""
    if hub_id is not None:
        return _open_hub(hub_id, text_column, label_column, labels)
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{missing('data.root', root)} (the layouts it accepts: `--help`, under --data.root)")
    read_table = partial(_read_split_file, text_column=text_column, label_column=label_column, labels=labels)
    if root.is_file():
        if root.suffix not in SPLIT_SUFFIXES:
            raise ValueError(f"data.root {root}: unsupported file type {root.suffix!r}. {LAYOUTS}")
        return Source(f"file {root}", {"train": partial(read_table, root)}, [root, *_names_file(root.parent)],
                      _class_names_file(root.parent))
    for imdb in (root, root / "aclImdb"):
        if (imdb / "train" / "pos").is_dir() or (imdb / "test" / "pos").is_dir():
            folders = {split: imdb / split for split in SPLIT_FILES if (imdb / split).is_dir()}
            return _class_folders(f"IMDb folders {imdb}", folders, list(IMDB_CLASSES), fixed=True)
    tables = {split: path for split in SPLIT_FILES if (path := _split_file(root, split)) is not None}
    if tables or _subfolders(root / "train"):
        _warn_unread_validation(root)
    if tables:
        files = [*tables.values(), *_names_file(root)]
        readers = {split: partial(read_table, path) for split, path in tables.items()}
        return Source(f"folder {root}", readers, files, _class_names_file(root))
    if _subfolders(root / "train"):
        folders = {split: root / split for split in SPLIT_FILES if (root / split).is_dir()}
        return _class_folders(f"class folders {root}/{{train,test}}", folders, _subfolders(root / "train"))
    if _subfolders(root):
        return _class_folders(f"class folders {root}", {"train": root}, _subfolders(root))
    corpus = _text_files(root)
    if corpus:
        return Source(f"text files {root}", {"train": partial(_read_text_files, root, corpus, labels)}, corpus)
    found = sorted(p.name for p in root.iterdir())[:20]
    raise FileNotFoundError(f"data.root {root}: no recognised layout (found {found}). {LAYOUTS}")


def read_predict_texts(path: Path, text_column: str) -> tuple[list[str], list[int]]:
    """Cleaned non-empty texts of a predict file (.txt: one per line; csv/jsonl/json/parquet: the
    ``text_column``) and their 0-based rows; a file with no text is an error naming it."""
    if not path.is_file():
        what = (f"is a folder; expected one file: .txt (one text per line) or one of {TABLE_SUFFIXES}"
                if path.is_dir() else "does not exist")
        raise FileNotFoundError(missing("data.predict_path", path, what))
    if path.suffix == ".txt":
        texts, rows = utf8_lines(path, f"data.predict_path {path}")
    elif path.suffix in TABLE_SUFFIXES:
        frame = read_frame(path, f"data.predict_path {path}")
        check_columns(list(frame.columns), (text_column,), str(path))
        texts = _text_values(frame[text_column].tolist(), str(path), text_column)
        rows = list(range(len(texts)))
    else:
        raise ValueError(f"data.predict_path {path}: use .txt or one of {TABLE_SUFFIXES}.")
    cleaned = [clean_text(t) for t in texts]
    if not any(cleaned):
        raise ValueError(
            f"data.predict_path {path} holds no text to predict ({len(texts)} rows, all empty); expected one "
            f"text per line (.txt) or a {text_column!r} column."
        )
    return drop_empty(cleaned, rows, str(path))


def utf8_lines(path: Path, source: str) -> tuple[list[str], list[int]]:
    """The lines of a text file (a leading byte-order mark dropped) that are UTF-8, with their 0-based numbers.
    The others are left out, counted and named (their 1-based numbers) in one warning: of independent texts, one
    stray byte costs its line, not the file; the kept lines keep their numbers."""
    text = path.read_bytes().removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    lines, rows, bad = [], [], []
    for row, line in enumerate(_text_lines(text)):
        escaped = next((ch for ch in line if "\udc80" <= ch <= "\udcff"), None)  # a byte that is not UTF-8
        if escaped is None:
            lines.append(line)
            rows.append(row)
        else:
            bad.append(f"{row + 1} (byte 0x{ord(escaped) - 0xdc00:02x})")
    if bad:
        named = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        rank_zero_warn(f"Text data: {source}: skipped {len(bad)} of {len(bad) + len(lines)} lines, not UTF-8: "
                       f"line {named}; the other lines keep their numbers.")
    return lines, rows


def read_text(path: Path, source: str) -> str:
    """The text of a UTF-8 file, a leading byte-order mark dropped; bytes that are not UTF-8 are an error
    naming ``source`` and the (1-based) line."""
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{source}: line {line} is not UTF-8 (byte 0x{data[error.start]:02x}); expected UTF-8 text."
        ) from error


def _text_lines(text: str) -> list[str]:
    """The lines of ``text``, split at \\n, \\r\\n and \\r only (`str.splitlines` also splits at form feeds, U+2028
    and other separators that texts copied from the web or from PDFs hold): one line, one text."""
    return io.StringIO(text, newline=None).readlines()


def read_frame(path: Path, source: str) -> pd.DataFrame:
    """A csv (with header) / jsonl / json / parquet file as a DataFrame; a file that is none is an error naming
    ``source``."""
    if path.suffix == ".parquet":
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError (see `_parse_frame`)
            raise ValueError(f"{source}: not a readable parquet file ({str(error).splitlines()[0]})") from error
    return _parse_frame(read_text(path, source), path.suffix, source)


def _parse_frame(text: str, suffix: str, source: str) -> pd.DataFrame:
    """The csv (with header) / jsonl / json ``text`` as a DataFrame; what pandas cannot parse is an error
    naming ``source``."""
    try:
        if suffix == ".csv":
            return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])
        if suffix == ".json":
            try:
                return pd.read_json(io.StringIO(text))
            except ValueError:
                pass
        return pd.read_json(io.StringIO(text), lines=True)
    except ValueError as error:
        line = _bad_json_line(text) if suffix == ".jsonl" else None
        what = f"line {line} is not a JSON record" if line else f"not a valid {suffix} table"
        raise ValueError(f"{source}: {what} ({' '.join(str(error).split())}).") from error


def _bad_json_line(text: str) -> int | None:
    """The (1-based) number of the first non-blank line of json-lines ``text`` that is not valid JSON, if any."""
    for number, line in enumerate(_text_lines(text), 1):
        try:
            if line.strip():
                json.loads(line)
        except ValueError:
            return number
    return None


def check_columns(columns: list[str], needed: tuple[str, ...], source: str) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ValueError(
            f"{source}: column(s) {missing} not found; columns are {list(columns)}. Set data.text_column / "
            "data.label_column."
        )


def drop_empty(texts: list[str], others: list[Any], source: str) -> tuple[list[str], list[Any]]:
    """Non-empty texts with their ``others`` entries; logs how many were skipped."""
    keep = [i for i, t in enumerate(texts) if t]
    if len(keep) < len(texts):
        rank_zero_warn(f"Text data: skipped {len(texts) - len(keep)} empty texts in {source}.")
    return [texts[i] for i in keep], [others[i] for i in keep]


# ---------------------------------------------------------------------------------------- layouts
def _subfolders(folder: Path) -> list[str]:
    """Sorted names of the non-hidden folders in ``folder`` (none if it is not a folder)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_folders(description: str, folders: dict[str, Path], classes: list[str], fixed: bool = False) -> Source:
    """Split folders holding one folder per class; every file of a class folder is one text, but for hidden ones and
    the system's (Thumbs.db, desktop.ini: left out with a warning naming them).

    ``fixed`` (IMDb): every split has all ``classes``, other folders (``unsup``) are ignored. Otherwise the
    classes are the training folders and a test folder unknown to them is an error. An empty class folder
    is an error.
    """
    listed: dict[str, list[tuple[str, list[Path]]]] = {}
    for split, folder in folders.items():
        present = [name for name in classes if (folder / name).is_dir()]
        if fixed and len(present) < len(classes):
            absent = [name for name in classes if name not in present]
            raise FileNotFoundError(f"{description}: class folder(s) {absent} missing in {folder}. {LAYOUTS}")
        unknown = [name for name in _subfolders(folder) if name not in classes]
        if unknown and not fixed:
            raise ValueError(f"{folder} has class folders absent from the training split: {unknown}")
        listed[split] = []
        for name in present:
            files = sorted(p for p in (folder / name).iterdir() if p.is_file() and not p.name.startswith("."))
            system = [p for p in files if is_os_metadata(p)]
            if system:
                rank_zero_warn(f"Text data: left out {len(system)} system file(s) in {folder / name}: "
                               f"{[p.name for p in system]}")
            files = [p for p in files if not is_os_metadata(p)]
            if not files:
                raise ValueError(f"class folder {folder / name} holds no file (expected one text per file).")
            listed[split].append((name, files))
    readers = {split: partial(_read_class_files, folders[split], entries) for split, entries in listed.items()}
    files = [path for entries in listed.values() for _, paths in entries for path in paths]
    return Source(description, readers, files)


def _read_class_files(folder: Path, entries: list[tuple[str, list[Path]]]) -> Split:
    """The texts of class folders (label = folder name); bytes that are not UTF-8 become U+FFFD (counted)."""
    texts, labels, not_utf8 = [], [], []
    for name, files in entries:
        for path in files:
            data = path.read_bytes()
            try:
                texts.append(data.decode("utf-8-sig"))
            except UnicodeDecodeError:
                texts.append(data.decode("utf-8-sig", errors="replace"))
                not_utf8.append(path.name)
            labels.append(name)
    if not_utf8:
        rank_zero_warn(
            f"Text data: {len(not_utf8)} files in {folder} are not valid UTF-8 (e.g. {not_utf8[:3]}); their "
            "undecodable bytes were replaced by U+FFFD."
        )
    return _clean(Split(texts, labels, str(folder)))


def _warn_unread_validation(root: Path) -> None:
    """Say so when ``root`` holds a validation split (``val.csv``, ``dev/``, ...): it is not read, validation is
    carved from the training split."""
    unread = sorted(p.name for p in root.iterdir() if p.stem.lower() in VALIDATION_NAMES
                    and (p.is_dir() or p.suffix in SPLIT_SUFFIXES))
    if unread:
        rank_zero_warn(f"Text data: {unread} in {root} not read: validation is carved from the training split "
                       "(data.val_fraction, data.seed).")


def _split_file(root: Path, split: str) -> Path | None:
    """The one ``<split>.<csv|jsonl|json|parquet|txt>`` in ``root`` (error if several)."""
    found = [root / f"{split}{suffix}" for suffix in SPLIT_SUFFIXES if (root / f"{split}{suffix}").is_file()]
    if len(found) > 1:
        raise ValueError(f"data.root {root}: several {split} files {[p.name for p in found]}; keep one.")
    return found[0] if found else None


def _names_file(folder: Path) -> list[Path]:
    """``folder/classes.txt`` if present: one of the files a source's data card is keyed by."""
    names = folder / "classes.txt"
    return [names] if names.is_file() else []


def _class_names_file(folder: Path) -> list[str] | None:
    """Names of integer classes from ``folder/classes.txt`` (AG-News; one per line), if present."""
    classes = folder / "classes.txt"
    if not classes.is_file():
        return None
    return [line.strip() for line in read_text(classes, str(classes)).splitlines() if line.strip()]


def _csv_rows(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """The non-blank records of csv ``text`` with the (1-based) line each starts on; a record the csv module
    refuses is an error naming ``source`` and the line."""
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    try:
        for row in reader:
            if row:
                yield line, row
            line = reader.line_num + 1
    except csv.Error as error:
        raise ValueError(f"{source}: line {line} is not a valid csv record ({error}).") from error


def _is_agnews_header(row: list[str]) -> bool:
    return [field.strip().lower() for field in row] == AGNEWS_HEADER


def _is_agnews(text: str, source: str) -> bool:
    """Csv text whose first record is 3 fields, the first an integer class (AG-News's headerless layout), or
    Kaggle's AG-News header."""
    _, first = next(_csv_rows(text, source), (0, []))
    return len(first) == 3 and (first[0].isdecimal() or _is_agnews_header(first))


def _read_agnews(text: str, source: str) -> Split:
    """AG-News csv rows (class 1, 2, ..., title, description), after Kaggle's header if there is one: labels 0, 1,
    ...; a row whose title and description are both empty is skipped and counted; a malformed row is an error
    naming its line."""
    texts, labels = [], []
    for number, (line, row) in enumerate(_csv_rows(text, source)):
        if number == 0 and _is_agnews_header(row):
            continue
        if len(row) != 3:
            raise ValueError(
                f"{source}: line {line} has {len(row)} fields; expected 3 (AG-News: class, title, description)."
            )
        if not row[0].isdecimal() or int(row[0]) < 1:
            raise ValueError(f"{source}: line {line}: class {row[0]!r} is not an AG-News class (1, 2, ...).")
        labels.append(int(row[0]) - 1)
        texts.append(". ".join(part for part in (row[1].strip(), row[2].strip()) if part))
    return _clean(Split(texts, labels, source, label_base=1))


def _text_files(folder: Path) -> list[Path]:
    """The sorted non-hidden ``*.txt`` files of ``folder`` (a corpus; ``classes.txt`` names classes, not texts)."""
    return sorted(p for p in folder.glob("*.txt") if p.is_file() and not p.name.startswith(".")
                  and p.name != "classes.txt")


def refuse_unlabelled(source: str, what: str) -> None:
    """The classifier's one-line error for texts without labels (``what`` says which are missing)."""
    raise ValueError(f"{source}: {what}; --task text needs a label per text (a table's data.label_column, or one "
                     "folder per class); pretrain on these texts with --task text_mlm.")


def _unlabelled(texts: list[str], source: str) -> Split:
    return _clean(Split(texts, [None] * len(texts), source, labelled=False))


def _read_text_files(folder: Path, paths: list[Path], labels: bool) -> Split:
    """Every line of every file of a folder of .txt files, one text each, without labels."""
    if labels:
        refuse_unlabelled(f"data.root {folder}", f"{len(paths)} .txt files of texts without labels")
    texts = [text for path in paths for text in _text_lines(read_text(path, str(path)))]
    return _unlabelled(texts, f"{folder} ({len(paths)} .txt files)")


def _read_split_file(path: Path, text_column: str, label_column: str | None, labels: bool) -> Split:
    """One split from a .txt file (one text per line, unlabelled) or a table file (`_read_table`)."""
    if path.suffix != ".txt":
        return _read_table(path, text_column, label_column, labels)
    if labels:
        refuse_unlabelled(str(path), "one text per line, without labels")
    return _unlabelled(_text_lines(read_text(path, str(path))), str(path))


def _read_table(path: Path, text_column: str, label_column: str | None, labels: bool) -> Split:
    """One split from a table file (AG-News csv, headerless or Kaggle's, detected automatically); without
    ``labels`` the label column is not read, and the split is unlabelled where the table has none."""
    if path.suffix == ".csv":
        text = read_text(path, str(path))
        if _is_agnews(text, str(path)):
            return _read_agnews(text, str(path))
        frame = _parse_frame(text, path.suffix, str(path))
    else:
        frame = read_frame(path, str(path))
    columns = list(frame.columns)
    check_columns(columns, (text_column,), str(path))
    texts = _text_values(frame[text_column].tolist(), str(path), text_column)
    if not labels:
        return _clean(Split(texts, [None] * len(texts), str(path), labelled=label_column in columns))
    if label_column not in columns:
        refuse_unlabelled(str(path), f"no label column {label_column!r} (columns are {columns})")
    return _clean(Split(texts, _label_values(frame[label_column].tolist(), str(path), label_column), str(path)))


def _open_hub(hub_id: str, text_column: str, label_column: str | None, labels: bool) -> Source:
    """``datasets.load_dataset(hub_id)``: its train and test splits."""
    try:
        import datasets
    except ImportError as error:
        raise ImportError(
            f"data.hub_id={hub_id!r} needs `pip install datasets` (and network access); offline, point "
            f"data.root at local files instead. {LAYOUTS}"
        ) from error
    loaded = datasets.load_dataset(hub_id)
    names = [name for name in SPLIT_FILES if name in loaded]
    if not names:
        raise ValueError(f"Hub dataset {hub_id!r} has no train or test split (has {list(loaded)}).")
    class_names = None
    for name in names:
        feature = loaded[name].features.get(label_column)
        if class_names is None and hasattr(feature, "names"):
            class_names = list(feature.names)
    readers = {
        name: partial(_read_hub_split, loaded[name], f"hub {hub_id} [{name}]", text_column, label_column, labels)
        for name in names
    }
    return Source(f"hub dataset {hub_id}", readers, None, class_names)


def _read_hub_split(part: Any, source: str, text_column: str, label_column: str | None, labels: bool) -> Split:
    check_columns(part.column_names, (text_column,), source)
    texts = _text_values(list(part[text_column]), source, text_column)
    if not labels:
        return _clean(Split(texts, [None] * len(texts), source, labelled=label_column in part.column_names))
    if label_column not in part.column_names:
        refuse_unlabelled(source, f"no label column {label_column!r} (columns are {part.column_names})")
    return _clean(Split(texts, _label_values(list(part[label_column]), source, label_column), source))


# ----------------------------------------------------------------------------------------- values
def _text_values(values: list[Any], source: str, column: str) -> list[Any]:
    """The texts of ``column``: strings, or missing (None, NaN: empty, skipped and counted later); any other value
    (a number: the wrong column?) is an error naming its row."""
    for row, value in enumerate(values):
        if not (isinstance(value, str) or value is None or (isinstance(value, float) and np.isnan(value))):
            raise ValueError(
                f"{source}: column {column!r} holds {value!r} in data row {row + 1}, not a text; set "
                "data.text_column to the column of the texts."
            )
    return values


def _label_values(values: list[Any], source: str, column: str) -> list[Any]:
    """Labels as all-int ids or all-str names, a name without the blanks around it ("pos " is "pos", as a csv
    written with spaces after its commas has it); missing (blank too), mixed or fractional labels are errors."""
    values = [v.strip() if isinstance(v, str) else v for v in values]
    missing = [row for row, v in enumerate(values) if v is None or v == "" or (isinstance(v, float) and np.isnan(v))]
    if missing:
        raise ValueError(f"{source}: {len(missing)} rows have no label in column {column!r} (the first: data row "
                         f"{missing[0] + 1}).")
    if all(isinstance(v, str) for v in values):
        return values
    numeric = (int, np.integer, float, np.floating)
    if all(isinstance(v, numeric) and not isinstance(v, bool) and float(v).is_integer() for v in values):
        return [int(v) for v in values]
    raise ValueError(f"{source}: labels in column {column!r} must be all strings or all integers.")


def class_names_of(reference: Split, source_names: list[str] | None) -> list[str]:
    """Class names, index = label id: the sorted unique string labels of ``reference`` (the training split,
    or the pool it is carved from), else the source's names of integer ids, else "0", "1", ...; integer ids
    that ``reference`` lacks (1-based labels leave 0 out) are reported: their classes are never trained."""
    if all(isinstance(v, str) for v in reference.labels):
        return sorted(set(reference.labels))
    names = source_names or [str(i) for i in range(max(reference.labels) + 1)]
    absent = sorted(set(range(len(names))) - set(reference.labels))
    if absent:
        rank_zero_warn(
            f"Text data: class id(s) {absent[:10]} of {names[:10]} never occur in {reference.source} (integer "
            "labels are class ids, from 0): the model has a class for each, never trained."
        )
    return names


def label_ids(split: Split, class_names: list[str], by_name: bool) -> list[int]:
    """Label ids of ``split``: looked up in ``class_names`` if the training labels are names (``by_name``),
    else integer ids checked against their number; a label outside the training labels' names or ids is an error
    naming the file (an id below the largest that training lacks is reported by `class_names_of`)."""
    if by_name:
        lookup = {name: i for i, name in enumerate(class_names)}
        for value in split.labels:
            if value not in lookup:
                raise ValueError(
                    f"{split.source}: label {value!r} does not occur in the training labels {class_names}."
                )
        return [lookup[v] for v in split.labels]
    count, base = len(class_names), split.label_base
    for value in split.labels:
        is_id = isinstance(value, (int, np.integer))
        if not is_id or not 0 <= value < count:
            shown = value + base if is_id else value
            raise ValueError(
                f"{split.source}: label {shown!r} is not a class id of the training labels "
                f"({base}..{count - 1 + base})."
            )
    return [int(v) for v in split.labels]


def _clean(split: Split) -> Split:
    """The split with cleaned texts, empty ones skipped (counted)."""
    texts, labels = drop_empty([clean_text(t) for t in split.texts], split.labels, split.source)
    return replace(split, texts=texts, labels=labels)
