"""ASR data module: LibriSpeech trees, NeMo manifests or HF hub splits -> padded log-mel CTC batches.

Pipeline per split: read (``sources``: transcripts normalised, durations from the manifest or the
file header) -> filter (vocabulary, duration, CTC length; every skip counted by reason and logged once
per split with examples) -> ``ASRDataset`` (load, resample, augment training waveforms, log-mel per
item) -> ``collate_asr`` (pad) -> ``LengthBucketBatchSampler`` (length-bucketed, DDP-aware; rank and
world size come from the attached trainer, which runs with ``use_distributed_sampler=False``).

Training batch (dict):
    features (B, T, n_mels) float32, zero-padded; feature_lengths (B,) long;
    targets (B, S) long, padded with 0 (the blank); target_lengths (B,) long;
    transcripts list[str] (normalised references); utt_ids list[str].
Predict batch: features, feature_lengths, audio_filepath list[str].

Corrupt files found only at load time (the header read at setup passed, decoding fails): the dataset
returns a drop marker instead of crashing the worker, ``collate_asr`` leaves the utterance out and lists
it with its error under ``load_errors``, and ``on_before_batch_transfer`` (main process) removes that key, logs
one line per utterance (its file and what was wrong) and counts it in ``load_failures`` (each once, however
often it is met). A batch whose every utterance failed reaches the LightningModule as ``None``; its step should
return None (Lightning then skips it; under DDP a skipped step on one rank stalls the others, so remove files the
warnings name). A predict batch keeps its failed inputs under ``failed`` instead: each gets a row with
``"text": null`` and its ``"error"``, as do the inputs that setup already found unusable (counted there, named
when they fail to load), so that every input has its row and its one line. Because this data module defines
``on_before_batch_transfer``, Lightning uses it instead of a LightningModule's.
"""

from __future__ import annotations

import functools
import logging
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from torch.nn.utils.rnn import pad_sequence
from torch.utils.data import DataLoader, Dataset

from ...layers.checks import require_positive, require_within
from ..sampling import (LengthBucketBatchSampler, ResumableDataLoader, SeedsEachBatch, every_rank_evaluates,
                        limit_leaves_every_rank_a_batch, padded_length)
from .audio import AudioError, LogMel, load_audio
from .augment import WaveformAugment, speed_perturbed_length
from .sources import (
    SkipLog,
    Utterance,
    find_librispeech_split,
    predict_files,
    read_hub_split,
    read_librispeech_split,
    read_manifest,
    read_predict_inputs,
)
from .vocab import CharVocab, SubwordVocab, vocab_from_json
from ..cache import user_cache_dir
from ..paths import missing

log = logging.getLogger(__name__)

HELDOUT = "heldout"  # name of the validation set carved from the training data
DEFAULT_VAL = "dev-clean"  # validation split used when val_splits is not set
VAL_BY = ("utterance", "speaker")


def speaker_of(utt_id: str) -> str:
    """The speaker of a LibriSpeech-style utterance id ``<speaker>-<chapter>-<utterance>``."""
    return utt_id.split("-", 1)[0]


def hold_out(utts: Sequence[Utterance], fraction: float, seed: int, by: str) -> tuple[list, list]:
    """(train, held out): ``fraction`` of the utterances, or with ``by="speaker"`` every utterance of
    ``fraction`` of the speakers (at least one; LibriSpeech's dev sets are likewise disjoint in speakers from
    its train sets), drawn with ``seed``."""
    if by == "utterance":
        groups = names = range(len(utts))
    else:
        groups = [speaker_of(u.utt_id) for u in utts]
        names = sorted(set(groups))
        if len(names) < 2:
            raise ValueError(f"data.val_by=speaker needs training utterances of at least 2 speakers (ids "
                             f"'<speaker>-<chapter>-<utt>'); all {len(utts)} have speaker {names[0]!r} "
                             f"(e.g. utterance {utts[0].utt_id!r})")
    held = set(random.Random(seed).sample(names, max(1, round(fraction * len(names)))))
    return [u for u, g in zip(utts, groups) if g not in held], [u for u, g in zip(utts, groups) if g in held]


class ASRDataset(SeedsEachBatch, Dataset):
    """Utterances -> dicts of log-mel features (T, n_mels) and, when transcribed, target ids.

    ``augment`` (training only) transforms each loaded waveform before the features; None leaves the
    audio as read. An utterance whose audio fails to load (``AudioError``) yields ``{"utt_id", "error"}``
    instead, which ``collate_asr`` drops and reports.
    """

    def __init__(self, utts: Sequence[Utterance], vocab: CharVocab | SubwordVocab | None, features: LogMel,
                 sample_rate: int, augment: WaveformAugment | None = None) -> None:
        self.utts = list(utts)
        self.vocab = vocab
        self.features = features
        self.sample_rate = sample_rate
        self.augment = augment

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        utt = self.utts[index]
        try:
            wav = load_audio(utt.source(), self.sample_rate)
            if self.augment is not None:
                wav = self.augment(wav)
            if wav.numel() < self.features.min_samples:
                raise AudioError(utt.audio_name, f"only {wav.numel()} samples")
        except AudioError as err:
            dropped = {"utt_id": utt.utt_id, "error": str(err)}
            return dropped if self.vocab is not None else {**dropped, "audio_filepath": utt.audio_name}
        with torch.no_grad():
            item = {"utt_id": utt.utt_id, "audio_filepath": utt.audio_name, "features": self.features(wav)}
        if utt.text is not None and self.vocab is not None:
            item["transcript"] = utt.text
            item["targets"] = torch.tensor(self.vocab.encode(utt.text), dtype=torch.long)
        return item


def collate_asr(items: list[dict[str, Any]], pad_multiple: int | None = None) -> dict[str, Any]:
    """Pad a list of ``ASRDataset`` items into a batch; failed items are left out. Features are padded to the
    longest item's frames, or with ``pad_multiple`` up to the next multiple of it (``sampling.padded_length``).

    Returns the batch keys of the module docstring plus ``load_errors`` ((utt_id, error) of each failed item;
    always present, usually empty), and for a predict batch with failed items ``failed``: (position in the batch,
    audio_filepath, error) of each, so that every input still gets its row. If every item failed, only those two
    are returned.
    """
    errors = [(it["utt_id"], it["error"]) for it in items if "error" in it]
    failed = [(i, it["audio_filepath"], it["error"]) for i, it in enumerate(items) if "error" in it and
              "audio_filepath" in it]
    items = [it for it in items if "error" not in it]
    if not items:
        return {"load_errors": errors, **({"failed": failed} if failed else {})}
    features = pad_sequence([it["features"] for it in items], batch_first=True)
    extra = padded_length(features.shape[1], pad_multiple) - features.shape[1]
    batch: dict[str, Any] = {
        "features": F.pad(features, (0, 0, 0, extra)) if extra else features,
        "feature_lengths": torch.tensor([it["features"].shape[0] for it in items], dtype=torch.long),
    }
    if "targets" in items[0]:
        batch["targets"] = pad_sequence([it["targets"] for it in items], batch_first=True, padding_value=0)
        batch["target_lengths"] = torch.tensor([it["targets"].numel() for it in items], dtype=torch.long)
        batch["transcripts"] = [it["transcript"] for it in items]
        batch["utt_ids"] = [it["utt_id"] for it in items]
    else:
        batch["audio_filepath"] = [it["audio_filepath"] for it in items]
    batch["load_errors"] = errors
    if failed:
        batch["failed"] = failed
    return batch



def utterances(count: int) -> str:
    """'1 utterance', 'N utterances'."""
    return f"{count} utterance{'s' * (count != 1)}"


def audio_time(seconds: float) -> str:
    """Audio time for a summary: hours from 0.1 h on, else minutes from a minute, else seconds (a split of a few
    seconds had read '0.00 h')."""
    if seconds >= 360:
        return f"{seconds / 3600:.2f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.1f} s"


def split_stats(kept: list[Utterance], skips: SkipLog, kept_infeasible: int) -> dict[str, Any]:
    """A split's ``split_stats`` entry: utterances kept, their hours, skips by reason, kept CTC-infeasible ones."""
    return {"utterances": len(kept), "hours": sum(u.duration for u in kept) / 3600, "skipped": dict(skips.counts),
            "ctc_infeasible": kept_infeasible}


def by_reason(counts: dict[str, int]) -> str:
    """``reason=count`` for each reason, sorted by reason."""
    return " ".join(f"{reason}={n}" for reason, n in sorted(counts.items()))


class ASRDataModule(L.LightningDataModule):
    """Speech recognition data: LibriSpeech-layout trees, NeMo manifests or HF hub splits.

    A split name (in ``train_splits`` / ``val_splits`` / ``test_splits``) is looked up in ``manifests``
    first, then as a folder under ``root`` (or ``root/LibriSpeech``), then on the hub (``hub_id``).
    Several train splits are concatenated; val and test splits stay separate, one loader each, named
    by ``val_split_names`` / ``test_split_names`` in loader order.

    Filters (each skip counted per split by reason, logged once per split with examples, and kept
    in ``split_stats``): on top of the reader's (``no_transcript``, ``no_audio``, ``unreadable``,
    ``empty_transcript``, ``oov``, ``duplicate_id``), ``oov`` for a transcript the vocabulary cannot
    encode, ``too_short`` / ``too_long`` (outside ``[min_duration, max_duration]``) and
    ``too_short_for_ctc`` (``frames // subsampling < target length + repeated adjacent labels``). The
    duration and CTC filters apply to training data only unless ``filter_eval``: reported WER then
    covers every usable utterance of a test split (the module should use ``zero_infinity`` CTC);
    ``split_stats[name]["ctc_infeasible"]`` counts such kept evaluation utterances.

    Args:
        root: LibriSpeech tree ``<root>/<split>/<speaker>/<chapter>/*.{flac,wav,ogg}`` with
            ``<speaker>-<chapter>.trans.txt`` files; ``root`` may also be the folder that holds
            ``LibriSpeech/``.
        train_splits: splits concatenated for training.
        val_splits: validation splits, one loader each; one that does not exist is an error listing the
            splits that do. Empty: ``val_fraction`` of the training utterances is held out with ``seed``
            and named ``"heldout"``. None (the default): ``dev-clean`` if the manifests or ``root`` hold
            it, else that hold-out with a warning (a misspelt or absent split is never replaced silently).
        test_splits: test splits, one loader each; a missing one is an error when testing.
        manifests: split name -> NeMo JSON-lines manifest (``audio_filepath``, ``duration``, ``text``;
            relative paths against the manifest's folder).
        hub_id: HF ``datasets`` id for splits found neither in ``manifests`` nor under ``root``
            (needs ``datasets`` and network access or its cache).
        hub_config: the hub dataset's configuration name (e.g. ``"clean"``), if it has several.
        vocab: ``"char"`` (blank, space, apostrophe, A-Z), or ``"bpe"`` / ``"unigram"`` subwords
            trained on the normalised training transcripts.
        vocab_size: requested subword vocabulary size (blank included); ignored for ``"char"``.
        cache_dir: where trained subword vocabularies are cached; None: ``asr/`` in the user cache
            (`user_cache_dir`), never in the data folder.
        sample_rate: rate every waveform is resampled to.
        n_mels: log-mel bins (25 ms window, 10 ms hop).
        min_duration: training utterances shorter than this (seconds) are skipped.
        max_duration: training utterances longer than this (seconds) are skipped.
        filter_eval: apply the duration and CTC filters to validation and test splits too.
        batch_size: utterances per batch (used when ``max_frames`` is None).
        max_frames: padding-aware batch budget in feature frames (10 ms each):
            ``batch size x longest utterance's frames <= max_frames``; replaces ``batch_size`` when set.
            It must cover the longest training utterance; an evaluation utterance longer than the
            budget forms a batch of its own.
        pad_multiple: pad each batch's frames up to a multiple of this instead of to its longest utterance: a
            few batch shapes, so that ``model.cuda_graphs`` replays its captures (``max_frames`` budgets the
            frames before this padding).
        num_workers: DataLoader worker processes (audio decoding and features run in them).
        seed: seed of the training batch order (epoch ``e`` uses ``seed + e``) and of the held-out carve.
        val_fraction: fraction of training utterances held out when no val split exists (0 = none).
        val_by: what that carve draws: ``"utterance"`` (random utterances; their speakers stay in training)
            or ``"speaker"`` (every utterance of ``val_fraction`` of the speakers, from the ids'
            ``<speaker>-`` prefix): validation on unseen voices, as LibriSpeech's dev sets and the offline
            set's test-synth are.
        subsampling: the encoder's time subsampling factor, for the CTC length filter.
        predict_path: a folder (recursive ``.wav/.flac/.ogg``), one audio file, a NeMo manifest
            (``.json`` / ``.jsonl``; ``audio_filepath`` relative to the manifest's folder, ``text`` not
            needed) or a list file of paths (one per line, relative to the list's folder) to transcribe;
            listed when the data module is built, so an input naming no audio is a one-line error before
            any training data is read.
        speed_perturb: speed perturbation of training audio (Ko et al. 2015): one factor per utterance
            and epoch, drawn uniformly from these (e.g. ``[0.9, 1.0, 1.1]``), plays it that many times
            faster (tempo and pitch together, length / factor). Empty: off. Training lengths are then
            judged at the worst case: the CTC filter at the fastest factor, the ``max_frames`` budget
            at the slowest (which must still cover the longest training utterance).
        telephone_prob: probability (in [0, 1]) that a training utterance goes through a simulated
            telephone channel (8 kHz, 300-3400 Hz, white noise, G.711 mu-law; see
            ``augment.telephone``), after speed perturbation. Needs ``sample_rate >= 8000``.
        telephone_snr_db: (low, high) dB range of that channel's noise SNR, drawn uniformly per utterance.

    Augmentation (``augment.WaveformAugment``) touches training audio only; validation (also the
    held-out part), test and predict audio are read exactly as without it. Its draws come from torch's
    global generator, which a loader worker reseeds for every batch (``sampling.SeedsEachBatch``).

    ``setup`` ends with a one-line summary of the splits it built (utterances, hours, skips by reason)
    and the vocabulary.
    """

    def __init__(
        self,
        root: str | None = None,
        train_splits: list[str] = ["train-clean-100"],  # noqa: B006 - copied, never mutated
        val_splits: list[str] | None = None,
        test_splits: list[str] = ["test-clean", "test-other"],  # noqa: B006
        manifests: dict[str, str] | None = None,
        hub_id: str | None = None,
        hub_config: str | None = None,
        vocab: str = "char",
        vocab_size: int = 256,
        cache_dir: str | None = None,
        sample_rate: int = 16000,
        n_mels: int = 80,
        min_duration: float = 0.3,
        max_duration: float = 20.0,
        filter_eval: bool = False,
        batch_size: int | None = 16,
        max_frames: int | None = None,
        pad_multiple: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        val_fraction: float = 0.05,
        val_by: str = "utterance",
        subsampling: int = 4,
        predict_path: str | None = None,
        speed_perturb: tuple[float, ...] = (),
        telephone_prob: float = 0.0,
        telephone_snr_db: tuple[float, float] = (15.0, 35.0),
    ) -> None:
        super().__init__()
        if vocab not in ("char", *SubwordVocab.KINDS):
            raise ValueError(f"data: vocab must be 'char', 'bpe' or 'unigram', got {vocab!r}")
        require_positive("data", sample_rate=sample_rate, n_mels=n_mels)
        require_within("data", 0, num_workers=num_workers)
        require_within("data", 1, subsampling=subsampling)
        require_within("data", 0, 1, val_fraction=val_fraction)
        if max_frames is None and (batch_size is None or batch_size < 1):
            raise ValueError(f"data: batch_size must be >= 1 (or give max_frames), got {batch_size!r}")
        if pad_multiple is not None and pad_multiple < 1:
            raise ValueError(f"data.pad_multiple must be >= 1 (or null), got {pad_multiple}")
        if val_by not in VAL_BY:
            raise ValueError(f"data.val_by must be one of {', '.join(VAL_BY)}, got {val_by!r}")
        if min_duration > max_duration:
            raise ValueError(f"data: min_duration must be <= max_duration, got {min_duration} > {max_duration}")
        if root is None and not manifests and hub_id is None and predict_path is None:
            raise ValueError("data: give a data source: root, manifests, hub_id (or predict_path to transcribe)")
        self.augment = WaveformAugment(sample_rate, tuple(speed_perturb), telephone_prob, tuple(telephone_snr_db))
        # Not logged beside the model's hyperparameters: this `vocab_size` is the size asked of a subword
        # vocabulary, the model's the size it got, and Lightning refuses two values under one key. The
        # run's config.yaml keeps these settings.
        self.save_hyperparameters(logger=False)
        self.root = root
        self.train_splits = list(train_splits)
        self.val_splits = None if val_splits is None else list(val_splits)
        self.test_splits = list(test_splits)
        self.manifests = dict(manifests or {})
        self.hub_id = hub_id
        self.hub_config = hub_config
        self.vocab_kind = vocab
        self.vocab_size = vocab_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else user_cache_dir() / "asr"
        self.sample_rate = sample_rate
        self.n_mels = n_mels
        self.min_duration = min_duration
        self.max_duration = max_duration
        self.filter_eval = filter_eval
        self.batch_size = None if max_frames is not None else batch_size
        self.max_frames = max_frames
        self.pad_multiple = pad_multiple
        self.num_workers = num_workers
        self.seed = seed
        self.val_fraction = val_fraction
        self.val_by = val_by
        self.subsampling = subsampling
        self.predict_path = predict_path
        self._predict_files = None if predict_path is None else predict_files(predict_path)
        self.features = LogMel(sample_rate=sample_rate, n_mels=n_mels)
        self.split_stats: dict[str, dict[str, Any]] = {}
        self.load_failures: list[str] = []
        self._raw: dict[str, tuple[list[Utterance], SkipLog]] = {}
        self._vocab: CharVocab | SubwordVocab | None = None
        self._train: ASRDataset | None = None
        self._val: dict[str, ASRDataset] = {}
        self._test: dict[str, ASRDataset] = {}
        self._predict: ASRDataset | None = None

    # ---- vocabulary -------------------------------------------------------------------------------
    @property
    def vocab(self) -> CharVocab | SubwordVocab:
        """The output vocabulary (blank = 0); a subword one is trained (or loaded from cache) on first use."""
        if self._vocab is None:
            if self.vocab_kind == "char":
                self._vocab = CharVocab()
            else:
                texts = [u.text for name in self.train_splits for u in self._read(name)[0]]
                self._vocab = SubwordVocab.train(texts, self.vocab_kind, self.vocab_size, self.cache_dir)
        return self._vocab

    @property
    def num_classes(self) -> int:
        """CTC output size, blank included."""
        return len(self.vocab)

    @property
    def val_split_names(self) -> list[str]:
        """Names of the validation loaders, in ``val_dataloader`` order (after ``setup``)."""
        return list(self._val)

    @property
    def test_split_names(self) -> list[str]:
        """Names of the test loaders, in ``test_dataloader`` order (after ``setup``)."""
        return list(self._test)

    def longest_frames(self) -> int:
        """Feature frames of the longest utterance a built split batches (a training one at its slowest speed
        perturbation), 0 before any is built: what a mixer of bounded length (`Encoder.longest_sequence`) must take."""
        built = [(d, False) for d in (*self._val.values(), *self._test.values())]
        built += [(self._train, True)] if self._train is not None else []
        return max((max(self._lengths(d, shuffle), default=0) for d, shuffle in built), default=0)

    # ---- checkpoint -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data: the vocabulary, so that evaluating or predicting with it trains
        none and reads no training transcript."""
        return {} if self._vocab is None else {"vocab": self._vocab.to_json()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Take a checkpoint's vocabulary, the one its head was trained for. The CLI calls this before an
        evaluation reads anything; Lightning again after ``setup`` in any run given the checkpoint. Splits
        already filtered and encoded with another one (changed data.vocab or data.vocab_size) are built again,
        with a warning."""
        if not state_dict:
            return
        if self._vocab is not None:
            if self._vocab.to_json() == state_dict["vocab"]:
                return
            rank_zero_warn("ASR data: the checkpoint's vocabulary differs from the one of these data.* settings; "
                           "transcripts are encoded with the checkpoint's, which its head was trained for.")
        self._vocab = vocab_from_json(state_dict["vocab"])
        self._train, self._val, self._test = None, {}, {}

    # ---- Lightning hooks --------------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Train and cache a subword vocabulary once per node, before the ranks' ``setup``."""
        if self.vocab_kind != "char":
            self.vocab  # noqa: B018 - property builds and caches it

    def setup(self, stage: str | None = None) -> None:
        """Read, filter and wrap the splits ``stage`` needs (all labelled ones for ``None``; "validate" reads the
        training splits only for a validation held out of them); summarise them. A labelled stage whose only source
        is a data.root that is not a folder says so before anything else."""
        if stage != "predict" and self.root is not None and not (self.manifests or self.hub_id) \
                and not Path(self.root).is_dir():
            raise FileNotFoundError(missing("data.root", self.root, "is not a folder"))
        built = []
        named = stage == "validate" and self._train is None and not self._val and self._val_split_names()
        if named:  # only a validation carved from the training utterances reads those
            for name in named:
                self._val[name] = self._build(name, self._read(name), train=False)
            built += named
        elif stage in ("fit", "validate", None) and self._train is None and self.train_splits:
            self._setup_fit()
            built += [*self.train_splits, *self._val]
        if stage in ("test", None) and not self._test:
            for name in self.test_splits:
                self._test[name] = self._build(name, self._read(name), train=False)
            built += list(self._test)
        if stage == "predict" and self._predict is None:
            self._setup_predict()
            built.append("predict")
        if built:
            self._log_summary(built)

    def train_dataloader(self) -> DataLoader:
        self.setup("fit")  # a no-op unless a checkpoint's vocabulary replaced the one the splits were built with
        if self._train is None:
            raise RuntimeError("no training data: data.train_splits is empty")
        return self._loader(self._train, shuffle=True)

    def val_dataloader(self) -> list[DataLoader]:
        """One loader per validation split (``val_split_names``); empty list when there is none."""
        self.setup("validate")
        return [every_rank_evaluates(f"validation {name}", self._loader(ds, shuffle=False), self.trainer,
                                     "limit_val_batches") for name, ds in self._val.items()]

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test split (``test_split_names``)."""
        self.setup("test")
        return [every_rank_evaluates(f"test {name}", self._loader(ds, shuffle=False), self.trainer,
                                     "limit_test_batches") for name, ds in self._test.items()]

    def predict_dataloader(self) -> DataLoader:
        if self._predict is None:
            raise RuntimeError("set predict_path and call setup('predict') first")
        return limit_leaves_every_rank_a_batch("predict", self._loader(self._predict, shuffle=False), self.trainer,
                                               "limit_predict_batches")

    def on_before_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any] | None:
        """Count utterances that failed to load, each with one line (its file and what was wrong) the first time
        it fails; ``None`` when the whole batch failed (a predict batch goes on with its ``failed`` inputs, which get
        rows of their own)."""
        predicting = "failed" in batch
        for utt_id, error in batch.pop("load_errors", []):
            if utt_id not in self.load_failures:  # one that failed in an earlier epoch (or validation) is counted once
                self.load_failures.append(utt_id)
                log.warning("%s%s (%s; %d failed to load so far)", "" if predicting else f"utterance {utt_id}: ",
                            error, "its row holds the error" if predicting else "left out", len(self.load_failures))
        return batch if "features" in batch or "failed" in batch else None

    # ---- building ---------------------------------------------------------------------------------
    def _setup_fit(self) -> None:
        """Training set (all train splits) and the validation sets (``_val_split_names``), carving one if there
        are none."""
        found = self._val_split_names()
        train = [u for name in self.train_splits for u in self._filter(name, self._read(name), True)]
        if not train:
            raise ValueError(f"no usable training utterance in {', '.join(map(self._unusable, self.train_splits))}")
        for name in found:
            self._val[name] = self._build(name, self._read(name), train=False)
        if not found:
            if self.val_fraction > 0:
                train, val = hold_out(train, self.val_fraction, self.seed, self.val_by)
                speakers = f" of {len({speaker_of(u.utt_id) for u in val})} speaker(s)" * (self.val_by == "speaker")
                plan = (f"holding out {len(val)} of {len(val) + len(train)} training utterances{speakers} as "
                        f"{HELDOUT!r} (val_fraction={self.val_fraction}, val_by={self.val_by}, seed={self.seed}); "
                        f"{len(train)} remain for training")
                self._val[HELDOUT] = self._dataset(val)
                self._record(HELDOUT, val, SkipLog(), kept_infeasible=0)
            else:
                plan = "no validation (val_fraction=0)"
            if self.val_splits is None:
                rank_zero_warn(f"no validation split: data.val_splits is not set and neither the manifests nor root "
                               f"hold {DEFAULT_VAL!r} ({self._where()}); {plan}. Name a split in data.val_splits, "
                               f"or set it to [] for this without the warning")
            else:
                _log_info(f"data.val_splits is empty: {plan}")
        self._train = ASRDataset(train, self.vocab, self.features, self.sample_rate, self.augment)
        if self.max_frames is not None and self.max_frames < (longest := max(self._lengths(self._train, shuffle=True))):
            raise ValueError(f"data.max_frames={self.max_frames} is smaller than the longest training utterance "
                             f"({longest} frames, at the slowest speed perturbation); raise data.max_frames or "
                             f"lower data.max_duration")

    def _val_split_names(self) -> list[str]:
        """The validation splits to read: every one of ``val_splits`` (each must exist), or with
        ``val_splits`` None ``DEFAULT_VAL`` where the manifests or ``root`` hold it (no hub look-up)."""
        if self.val_splits is None:
            where = self._locate(DEFAULT_VAL)
            return [DEFAULT_VAL] if where is not None and where[0] != "hub" else []
        missing = [name for name in self.val_splits if self._locate(name) is None]
        if missing:
            raise FileNotFoundError(f"validation split(s) {missing} not found ({self._where()}); name existing "
                                    f"ones in data.val_splits, or set it to [] to hold out val_fraction of the "
                                    f"training utterances")
        return self.val_splits

    def _setup_predict(self) -> None:
        """The inputs of ``predict_path``, every one at its index: one skipped here (missing, unreadable, too short)
        fails again when loaded, so it gets a row with its error instead of shifting the others' indices."""
        if self._predict_files is None:
            raise ValueError("predict needs predict_path (a folder, an audio file, a NeMo manifest or a list file)")
        utts, skips = read_predict_inputs(self._predict_files)
        kept = []
        for u in utts:
            if round(u.duration * self.sample_rate) < self.features.min_samples:
                skips.add("too_short", u.utt_id, f"{u.duration:.3f}s")
            else:
                kept.append(u)
        if not kept:
            raise ValueError(f"no readable audio in predict_path {self.predict_path}: {skips.describe()}")
        self.split_stats["predict"] = split_stats(kept, skips, kept_infeasible=0)  # unusable ones: named as they fail
        usable = {u.utt_id: u for u in kept}
        every = [usable.get(str(file), Utterance(str(file), str(file), 0.0, None)) for file in self._predict_files]
        self._predict = ASRDataset(every, None, self.features, self.sample_rate)

    def _build(self, name: str, raw: tuple[list[Utterance], SkipLog], train: bool) -> ASRDataset:
        """An evaluation split's dataset; one left with no usable utterance is an error naming its skips."""
        utts = self._filter(name, raw, train)
        if not utts:
            raise ValueError(f"no usable utterance in {self._unusable(name)}")
        return self._dataset(utts)

    def _unusable(self, name: str) -> str:
        """Split ``name``, read and left with no usable utterance, with where it was read from and its skips by reason
        (`split 'dev' (data.manifests.dev dev.json: empty)`)."""
        kind, location = self._locate(name)
        source = {"manifest": f"data.manifests.{name} {location}", "tree": f"folder {location}",
                  "hub": f"hub {location}"}[kind]
        skipped = by_reason(self.split_stats[name]["skipped"])
        return f"split {name!r} ({source}: {f'skipped {skipped}' if skipped else 'empty'})"

    def _dataset(self, utts: list[Utterance]) -> ASRDataset:
        return ASRDataset(utts, self.vocab, self.features, self.sample_rate)

    def _filter(self, name: str, raw: tuple[list[Utterance], SkipLog], train: bool) -> list[Utterance]:
        """Apply vocabulary, duration and CTC filters to a split; record and log its statistics."""
        utts, reader_skips = raw
        skips = SkipLog()
        skips.counts.update(reader_skips.counts)
        for reason, examples in reader_skips.examples.items():
            skips.examples[reason].extend(examples)
        strict = train or self.filter_eval
        speed = max(self.augment.speed_perturb, default=1.0) if train else 1.0
        kept, infeasible = [], 0
        for u in utts:
            try:
                target = self.vocab.encode(u.text)
            except ValueError as err:
                skips.add("oov", u.utt_id, str(err))
                continue
            if strict and u.duration < self.min_duration:
                skips.add("too_short", u.utt_id, f"{u.duration:.2f}s")
                continue
            if strict and u.duration > self.max_duration:
                skips.add("too_long", u.utt_id, f"{u.duration:.2f}s")
                continue
            frames = self._frames(u, speed) // self.subsampling
            needed = len(target) + sum(a == b for a, b in zip(target, target[1:]))
            if frames < needed:
                if strict:
                    skips.add("too_short_for_ctc", u.utt_id, f"{frames} frames < {needed} labels")
                    continue
                infeasible += 1
            kept.append(u)
        self._record(name, kept, skips, kept_infeasible=infeasible)
        return kept

    def _log_summary(self, names: list[str]) -> None:
        """One line for the splits just built: utterances, hours and skips by reason, the vocabulary."""
        parts = []
        for name in names:
            stats = self.split_stats[name]
            part = f"{name} {utterances(stats['utterances'])} ({audio_time(3600 * stats['hours'])}"
            if stats["skipped"]:
                skipped = by_reason(stats["skipped"])
                part += f", unusable {skipped}, each named as it fails to load" if name == "predict" else \
                    f", skipped {skipped}"
            parts.append(part + ")")
        if self._train is not None and self.train_splits[0] in names:
            parts.append(f"training set {utterances(len(self._train))}")
        if self._vocab is not None:
            parts.append(f"vocabulary {self.vocab_kind} ({len(self._vocab)} symbols, blank included)")
        rank_zero_info("ASR data: " + "; ".join(parts))

    def _record(self, name: str, kept: list[Utterance], skips: SkipLog, kept_infeasible: int) -> None:
        """Keep split ``name``'s statistics and log them in one line, with examples of its skips."""
        self.split_stats[name] = split_stats(kept, skips, kept_infeasible)
        hours = self.split_stats[name]["hours"]
        message = f"ASR split {name!r}: {utterances(len(kept))}, {audio_time(3600 * hours)}"
        if kept_infeasible:
            message += f"; {kept_infeasible} kept although too short for CTC (filter_eval=False)"
        if skips.total():
            _log_warning(f"{message}; skipped {skips.total()}: {skips.describe()}")
        else:
            _log_info(message)

    def _frames(self, utt: Utterance, speed: float = 1.0) -> int:
        """Feature frames of ``utt`` played at ``speed`` (1.0: as recorded)."""
        samples = speed_perturbed_length(round(utt.duration * self.sample_rate), self.sample_rate, speed)
        return self.features.num_frames(samples)

    def _lengths(self, dataset: ASRDataset, shuffle: bool) -> list[int]:
        """Feature frames of each utterance of ``dataset`` as its loader batches them: a training (shuffled) one at
        the slowest speed perturbation, the longest it can be."""
        speed = min(self.augment.speed_perturb, default=1.0) if shuffle else 1.0
        return [self._frames(u, speed) for u in dataset.utts]

    def _loader(self, dataset: ASRDataset, shuffle: bool) -> DataLoader:
        trainer = self.trainer
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        lengths = self._lengths(dataset, shuffle)
        max_tokens = self.max_frames
        if max_tokens is not None and not shuffle:
            max_tokens = max(max_tokens, max(lengths))
        sampler = LengthBucketBatchSampler(
            lengths, batch_size=self.batch_size, max_tokens=max_tokens, shuffle=shuffle, seed=self.seed,
            num_replicas=world, rank=rank,
        )
        return ResumableDataLoader(
            dataset, batch_sampler=sampler, collate_fn=functools.partial(collate_asr, pad_multiple=self.pad_multiple),
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0,
        )

    # ---- sources ----------------------------------------------------------------------------------
    def _locate(self, name: str) -> tuple[str, Any] | None:
        """Where split ``name`` comes from: ("manifest", path), ("tree", folder), ("hub", id) or None."""
        if name in self.manifests:
            return "manifest", self.manifests[name]
        if self.root is not None:
            folder = find_librispeech_split(self.root, name)
            if folder is not None:
                return "tree", folder
        if self.hub_id is not None:
            return "hub", self.hub_id
        return None

    def _where(self) -> str:
        parts = []
        if self.manifests:
            parts.append(f"manifests for {sorted(self.manifests)}")
        if self.root is not None and not Path(self.root).is_dir():
            parts.append(missing("data.root", self.root, "is not a folder"))
        elif self.root is not None:
            base = Path(self.root)
            folders = sorted(p.name for b in (base, base / "LibriSpeech") if b.is_dir() for p in b.iterdir()
                             if p.is_dir() and next(p.glob("*/*/*.trans.txt"), None))  # not meta/, LibriSpeech/
            parts.append(f"split folders under {self.root}: {folders}")
        if self.hub_id is not None:
            parts.append(f"hub {self.hub_id}")
        return "; ".join(parts) or "no source configured"

    def _read(self, name: str) -> tuple[list[Utterance], SkipLog]:
        """Read split ``name`` once (cached): records with normalised text, plus the reader's skips."""
        if name not in self._raw:
            where = self._locate(name)
            if where is None:
                raise FileNotFoundError(f"split {name!r} not found ({self._where()})")
            kind, location = where
            if kind == "manifest":
                if not Path(location).is_file():
                    what = "is a folder, not a manifest file" if Path(location).is_dir() else "does not exist"
                    raise FileNotFoundError(missing(f"data.manifests.{name}", location, what))
                self._raw[name] = read_manifest(location)
            elif kind == "tree":
                self._raw[name] = read_librispeech_split(location)
            else:
                self._raw[name] = read_hub_split(location, self.hub_config, name)
        return self._raw[name]


@rank_zero_only
def _log_info(message: str) -> None:
    log.info(message)


@rank_zero_only
def _log_warning(message: str) -> None:
    log.warning(message)
