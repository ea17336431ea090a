"""Readers that turn one split of speech data into utterance records, counting every skip by reason.

Supported inputs:
- LibriSpeech tree: ``<split>/<speaker>/<chapter>/<utt>.{flac,wav,ogg}`` with one
  ``<speaker>-<chapter>.trans.txt`` per chapter, lines ``<utt_id> <TRANSCRIPT>``.
- NeMo manifest: JSON lines with ``audio_filepath``, ``duration`` (optional: read from the header
  if absent) and ``text``; relative paths are resolved against the manifest's folder.
- HF hub split (``datasets``, online users only): an audio column and a text column.
- Prediction inputs: a folder (recursive), one audio file, a NeMo manifest (``.json`` / ``.jsonl``,
  ``audio_filepath`` only) or a list file of paths.

Transcripts are normalised here (``normalize_transcript(strict=True)``), durations come from the
manifest or the file header (``soundfile.info``). Skip reasons recorded here:
``no_transcript`` (audio file without a transcript line), ``no_audio`` (transcript line or manifest
entry whose audio file is missing), ``unreadable`` (the header could not be read, or 0 frames),
``empty_transcript``, ``oov`` (a digit or a letter outside A-Z in the transcript),
``duplicate_id``, ``hidden`` (a file under a LibriSpeech split whose name, or a folder's, starts with ".": not
read). Text files (transcripts, manifests, list files) are UTF-8, a byte-order mark allowed; a transcript line's id
ends at its first space or tab. Filters that need the vocabulary or the model (duration, CTC length) live in the
data module.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .audio import AUDIO_EXTENSIONS, AudioError, AudioSource, audio_duration
from ..paths import is_hidden, missing
from .vocab import OOVError, normalize_transcript

_EXAMPLES_PER_REASON = 3
MANIFEST_SUFFIXES = (".json", ".jsonl")


@dataclass(frozen=True)
class HubAudio:
    """Reference to the encoded audio of row ``index`` of a HF ``datasets`` split (read lazily)."""

    dataset: Any
    index: int
    column: str
    name: str

    def open(self) -> AudioSource:
        """A readable source: the stored bytes (named after the row) or the stored path."""
        cell = self.dataset[self.index][self.column]
        if cell.get("bytes"):
            buf = io.BytesIO(cell["bytes"])
            buf.name = self.name
            return buf
        if cell.get("path"):
            return cell["path"]
        raise AudioError(self.name, "hub row holds neither audio bytes nor a path")


@dataclass(frozen=True)
class Utterance:
    """One utterance: id, audio (path or hub reference), duration in seconds, normalised transcript.

    ``text`` is None for prediction inputs, which have no reference.
    """

    utt_id: str
    audio: str | HubAudio
    duration: float
    text: str | None

    def source(self) -> AudioSource:
        """What ``load_audio`` reads."""
        return self.audio.open() if isinstance(self.audio, HubAudio) else self.audio

    @property
    def audio_name(self) -> str:
        """The audio path (or hub row name) for messages and prediction outputs."""
        return self.audio.name if isinstance(self.audio, HubAudio) else self.audio


class SkipLog:
    """Skipped utterances of one split: a count per reason and the first few ids (with details)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, utt_id: str, detail: str = "") -> None:
        """Count one skip of ``utt_id`` for ``reason``."""
        self.counts[reason] += 1
        if len(self.examples[reason]) < _EXAMPLES_PER_REASON:
            self.examples[reason].append(f"{utt_id} ({detail})" if detail else utt_id)

    def total(self) -> int:
        """Number of skipped utterances."""
        return sum(self.counts.values())

    def describe(self) -> str:
        """``reason=count [e.g. id (detail), ...]`` for every reason, most frequent first."""
        return "; ".join(
            f"{reason}={n} [e.g. {', '.join(self.examples[reason])}]" for reason, n in self.counts.most_common()
        )


def read_utf8(path: Path) -> str:
    """The text of ``path``, UTF-8 with or without a byte-order mark (as Windows editors save it); a
    ``ValueError`` naming the file, the line and the byte otherwise."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        lineno = data[:err.start].count(b"\n") + 1
        raise ValueError(f"{path}:{lineno}: not UTF-8 text (byte {data[err.start]:#04x})") from None


def audio_files(folder: Path) -> list[Path]:
    """The audio files under ``folder`` (recursive, sorted), hidden ones left out."""
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file() and not is_hidden(p, folder))


def find_librispeech_split(root: str | os.PathLike, split: str) -> Path | None:
    """The folder of ``split`` under ``root`` or ``root/LibriSpeech`` (the archive's top folder), or None."""
    for base in (Path(root), Path(root) / "LibriSpeech"):
        if (base / split).is_dir():
            return base / split
    return None


def read_librispeech_split(split_dir: str | os.PathLike) -> tuple[list[Utterance], SkipLog]:
    """All utterances of a LibriSpeech split folder, sorted by path; audio and transcripts matched by id."""
    split_dir = Path(split_dir)
    skips = SkipLog()
    texts: dict[str, str] = {}
    for hidden in sorted(p for p in split_dir.rglob(".*") if p.is_file()):
        skips.add("hidden", hidden.name, str(hidden))
    for trans in sorted(p for p in split_dir.rglob("*.trans.txt") if not is_hidden(p, split_dir)):
        for line in read_utf8(trans).splitlines():
            if not line.strip():
                continue
            utt_id, text = (line.split(maxsplit=1) + [""])[:2]  # a tab or spaces after the id
            if utt_id in texts:
                skips.add("duplicate_id", utt_id, f"second transcript line in {trans.name}")
                continue
            texts[utt_id] = text
    audio: dict[str, str] = {}
    for path in audio_files(split_dir):
        if path.stem in audio:
            skips.add("duplicate_id", path.stem, f"second audio file {path.name}")
        elif path.stem not in texts:
            skips.add("no_transcript", path.stem, str(path))
        else:
            audio[path.stem] = str(path)
    for utt_id in texts:
        if utt_id not in audio:
            skips.add("no_audio", utt_id, f"no {'/'.join(AUDIO_EXTENSIONS)} file")
    ids = sorted(audio, key=audio.get)
    return _finish([(i, audio[i], None, texts[i]) for i in ids], skips, audio_duration), skips


def read_manifest(manifest: str | os.PathLike) -> tuple[list[Utterance], SkipLog]:
    """Utterances of a NeMo JSON-lines manifest, in file order.

    A line that is not a record with a string ``audio_filepath`` and a string ``text`` (and, if given, a
    positive number ``duration``) raises a one-line ``ValueError`` naming the file, the line and the key.
    Such a line is a fault of the tool that wrote the manifest, not of one recording: skipping it would
    silently drop every utterance that tool got wrong (all of them, if it writes ``"text": null``), and the
    line to mend is known. A well-formed line whose audio file is missing is different (a corpus partly
    downloaded or pruned) and is counted as ``no_audio``. A line naming an audio file an earlier line named is
    counted as ``duplicate_id``; files of one name in different folders (``spk1/001.wav``, ``spk2/001.wav``) are
    different recordings, all kept. The first ``CHECKED_DURATIONS`` given durations are checked against their files'
    headers (`check_durations`).
    """
    manifest = Path(manifest)
    skips = SkipLog()
    entries = []
    given: list[tuple[int, Path, float]] = []
    seen: set[Path] = set()
    for lineno, row in _manifest_rows(manifest, ("audio_filepath", "text")):
        path = _resolve(manifest, row["audio_filepath"])
        utt_id = str(row.get("utt_id", row.get("id", path.stem)))
        if (key := path.resolve()) in seen:
            skips.add("duplicate_id", utt_id, f"{manifest.name}:{lineno} lists {path} again")
            continue
        seen.add(key)
        if not path.is_file():
            skips.add("no_audio", utt_id, str(path))
            continue
        duration = row.get("duration")
        entries.append((utt_id, str(path), None if duration is None else float(duration), row["text"]))
        if duration is not None and len(given) < CHECKED_DURATIONS:
            given.append((lineno, path, float(duration)))
    check_durations(manifest, given)
    return _finish(entries, skips, audio_duration), skips


CHECKED_DURATIONS = 8  # header reads: the manifest's durations spare reading every file's


def check_durations(manifest: Path, given: list[tuple[int, Path, float]]) -> None:
    """A manifest whose durations (line number, audio file, seconds) disagree with the audio's (by more than 0.1 s
    and 5 %) is a one-line ``ValueError`` naming the first such line: the durations decide which utterances
    data.min/max_duration keep and how batches are packed, so durations of another unit or another file would
    silently drop most of a split as too long or too short. A file that cannot be read is left to the loader."""
    for lineno, path, duration in given:
        measured = _try(audio_duration, path)
        if not isinstance(measured, AudioError) and abs(duration - measured) > max(0.1, 0.05 * measured):
            raise ValueError(f"{manifest}:{lineno}: 'duration' is {duration:g} s but {path} holds {measured:.2f} s of "
                             "audio; fix the manifest's durations, or leave them out to read them from the files")


def _manifest_rows(manifest: Path, keys: tuple[str, ...]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of each non-blank line of a NeMo manifest, every line checked by
    ``_manifest_problem``; a ``ValueError`` naming the file and line otherwise, raised without the
    decoder's exception (its message is in the error's)."""
    for lineno, line in enumerate(read_utf8(manifest).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            problem = f"not JSON ({err.msg} at column {err.colno})"
        else:
            problem = _manifest_problem(row, keys)
        if problem:
            raise ValueError(f"{manifest}:{lineno}: {problem}")
        yield lineno, row


def _manifest_problem(row: Any, keys: tuple[str, ...]) -> str | None:
    """What makes a decoded manifest line unusable, or None: not an object holding ``keys`` as strings, a
    ``duration`` that is not a positive number of seconds (absent or null: read from the header), or a
    segment (``offset``)."""
    wanted = f"not a manifest line with {' and '.join(repr(key) for key in keys)}"
    if not isinstance(row, dict):
        return f"{wanted} (got {_shown(row)})"
    missing = [key for key in keys if key not in row]
    if missing:
        return f"{wanted} (no {' or '.join(repr(key) for key in missing)})"
    for key in keys:
        if not isinstance(row[key], str):
            return f"{key!r} must be a string, got {_shown(row[key])}"
    duration = row.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, (int, float))
                                 or not 0 < duration < math.inf):
        return f"'duration' must be a positive number of seconds (or absent), got {_shown(duration)}"
    if row.get("offset", 0):
        return "segments ('offset' != 0) are not supported"
    return None


def _shown(value: Any) -> str:
    """``value`` as JSON, cut to 60 characters."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve(listing: Path, name: str) -> Path:
    """A path named in ``listing`` (a manifest or list file): absolute, or relative to the listing's folder."""
    path = Path(name)
    return path if path.is_absolute() else listing.parent / path


def read_hub_split(hub_id: str, config: str | None, split: str) -> tuple[list[Utterance], SkipLog]:
    """Utterances of a HF hub split (needs ``datasets`` and network access or the local hub cache).

    The audio column is kept encoded (``Audio(decode=False)``) and read with soundfile on demand;
    the text column is the first of ``text``, ``sentence``, ``transcription``, ``transcript``.
    Durations come from each row's audio header, which reads the split's audio once at setup.
    """
    try:
        import datasets
    except ImportError as err:
        raise ImportError("hub_id needs the 'datasets' package: pip install 'infomamba[hub]'") from err
    ds = datasets.load_dataset(hub_id, config, split=split)
    audio_cols = [name for name, feat in ds.features.items() if isinstance(feat, datasets.Audio)]
    text_cols = [c for c in ("text", "sentence", "transcription", "transcript") if c in ds.column_names]
    if not audio_cols or not text_cols:
        raise ValueError(
            f"hub dataset {hub_id!r} split {split!r} needs an Audio column and a text column "
            f"(text/sentence/transcription/transcript); it has {ds.column_names}"
        )
    ds = ds.cast_column(audio_cols[0], datasets.Audio(decode=False))
    meta = ds.select_columns([c for c in (text_cols[0], "id") if c in ds.column_names])
    entries = []
    for i, row in enumerate(meta):
        utt_id = str(row.get("id", f"{split}-{i:07d}"))
        ref = HubAudio(ds, i, audio_cols[0], f"hub:{hub_id}/{split}/{utt_id}")
        entries.append((utt_id, ref, None, row[text_cols[0]]))
    skips = SkipLog()
    return _finish(entries, skips, lambda ref: audio_duration(ref.open())), skips


def predict_files(path: str | os.PathLike) -> list[Path]:
    """The audio files to transcribe: a folder (recursive, sorted, hidden files left out), one audio file, a NeMo
    manifest (``.json`` / ``.jsonl``: the ``audio_filepath`` of each line, resolved and checked as ``read_manifest``
    does; ``text`` is not needed), or a list file (one path per line, ``#`` comments and blank lines ignored,
    relative to the list's folder). An input that names no audio file, a manifest line without an
    ``audio_filepath`` string, or a file of another extension that is no list (not UTF-8 text, e.g. audio of a
    format not in ``AUDIO_EXTENSIONS``) is an error naming it; a listed file that is missing is skipped later
    (counted).
    """
    path = Path(path)
    expected = (f"a folder of {'/'.join(AUDIO_EXTENSIONS)} files, one such file, a NeMo manifest "
                f"({'/'.join(MANIFEST_SUFFIXES)}) or a list file of their paths")
    if path.is_dir():
        files = audio_files(path)
        if not files:
            raise ValueError(f"predict_path {path} holds no audio file (expected {expected})")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"{missing('predict_path', path)} (expected {expected})")
    if path.suffix.lower() in AUDIO_EXTENSIONS:
        return [path]
    if path.suffix.lower() in MANIFEST_SUFFIXES:
        files = [_resolve(path, row["audio_filepath"]) for _, row in _manifest_rows(path, ("audio_filepath",))]
    else:
        try:
            text = read_utf8(path)
        except ValueError:
            raise ValueError(f"predict_path {path} is not UTF-8 text, so not a list file, and its extension is not "
                             f"an audio file's (expected {expected})") from None
        lines = (ln.strip() for ln in text.splitlines())
        files = [_resolve(path, ln) for ln in lines if ln and not ln.startswith("#")]
    if not files:
        raise ValueError(f"predict_path {path} lists no audio file (expected {expected})")
    return files


def read_predict_inputs(files: list[Path]) -> tuple[list[Utterance], SkipLog]:
    """Utterances (no transcript) of ``predict_files``; a missing file is skipped as ``no_audio``."""
    skips = SkipLog()
    entries = []
    for file in files:
        if file.is_file():
            entries.append((str(file), str(file), None, None))
        else:
            skips.add("no_audio", str(file), "file not found")
    return _finish(entries, skips, audio_duration), skips


def _finish(
    entries: Iterable[tuple[str, Any, float | None, str | None]],
    skips: SkipLog,
    duration_of: Callable[[Any], float],
) -> list[Utterance]:
    """Fill missing durations (threaded header reads) and normalise transcripts, recording skips."""
    entries = list(entries)
    todo = [audio for _, audio, duration, _ in entries if duration is None]
    with ThreadPoolExecutor(max_workers=min(32, 4 * (os.cpu_count() or 1))) as pool:
        measured = iter(list(pool.map(lambda a: _try(duration_of, a), todo)))
    utts = []
    for utt_id, audio, duration, raw in entries:
        if duration is None:
            duration = next(measured)
        if isinstance(duration, AudioError):
            skips.add("unreadable", utt_id, duration.reason)
            continue
        text = None
        if raw is not None:
            try:
                text = normalize_transcript(raw, strict=True)
            except OOVError as err:
                skips.add("oov", utt_id, f"character {err.char!r}")
                continue
            if not text:
                skips.add("empty_transcript", utt_id, repr(raw))
                continue
        utts.append(Utterance(utt_id, audio, duration, text))
    return utts


def _try(fn: Callable[[Any], float], arg: Any) -> float | AudioError:
    try:
        return fn(arg)
    except AudioError as err:
        return err
