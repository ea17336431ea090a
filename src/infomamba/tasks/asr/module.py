"""CTC speech recognition: log-mel -> SpecAugment -> conv subsampling -> Encoder -> CTC head.

WER and CER come from torchmetrics (errors and reference lengths are summed over DDP ranks before
dividing), one pair per evaluation split (`val/<split>/wer`, `test/<split>/wer`); `val/wer` is the
first validation split's, for checkpointing. Loss = CTC + Eq. 14's redundancy and MI-hash terms
(no class label, so InfoNCE is off). The vocabulary travels in the checkpoint, so
`CTCSpeechRecognizer.load_from_checkpoint(path).transcribe([...])` needs no data module.
"""
from __future__ import annotations

import io
import os
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchmetrics
from lightning.pytorch.utilities import rank_zero_warn
from torch.nn.utils.rnn import pad_sequence

from infomamba import EncoderConfig
from infomamba.layers.checks import require_positive
from infomamba.losses import LossWeights
from infomamba.mixers import without_training_terms

from ..base import CompileOption, RunRefused, TaskModule, list_of_inputs
from .audio import AudioError, LogMel, SpecAugment, load_audio, source_name, waveform_input
from .beam import BeamDecoder, beam_vocab_problem, check_beam_options
from .subsampling import ConvSubsampling, conv_out_length
from .vocab import CharVocab, SubwordVocab, vocab_from_json


class CTCSpeechRecognizer(TaskModule):
    """CTC speech recognition on the shared encoder.

    TaskModule's arguments (encoder, loss, lr, ...) are documented there; these are the task's own.

    Args:
        n_mels: log-mel channels of the frontend (data.n_mels must match).
        subsampling: time subsampling of the frontend, 4 or 8.
        spec_augment: SpecAugment on training batches.
        decoder: "greedy" or "beam".
        beam_size: beams of the beam decoder, >= 1.
        lm_path: a KenLM binary or arpa file for the beam decoder.
        lm_weight: the language model's weight in the beam decoder.
        word_score: the beam decoder's score per word.
        vocab_size: CTC outputs, blank included (the data's; the CLI links it).
        sample_rate: of the waveforms `transcribe` takes (the data's; linked).
        vocab: the output symbols (linked); None: characters when vocab_size fits them, else the checkpoint's,
            restored by `load_from_checkpoint`.

    The loss defaults to Eq. 14 without its MI terms: InfoNCE (beta) needs a class label, and Eq. 13's
    redundancy penalty at gamma 0.01 kept InfoMamba on CTC's blank plateau for whole runs on the offline
    speech set, where gamma 0, 0.001 and 0.0001 learn (H200, seed 0; docs/results.md, "Offline speech: why
    InfoMamba did not learn"; LibriSpeech not measured)."""

    def __init__(self, encoder: EncoderConfig = EncoderConfig(dim=144, depth=6),
                 loss: LossWeights = LossWeights(gamma=0.0, use_nce=False), lr: float = 2e-3,
                 weight_decay: float = 0.01,
                 betas: tuple[float, float] = (0.9, 0.98), warmup_ratio: float = 0.1, min_lr_ratio: float = 0.01,
                 n_mels: int = 80, subsampling: int = 4, spec_augment: bool = True, decoder: str = "greedy",
                 beam_size: int = 50, lm_path: str | None = None, lm_weight: float = 2.0, word_score: float = 0.0,
                 vocab_size: int = len(CharVocab()), sample_rate: int = 16000,
                 vocab: CharVocab | SubwordVocab | None = None,
                 compile: CompileOption = False, cuda_graphs: bool = False):
        if decoder not in ("greedy", "beam"):
            raise ValueError(f"model.decoder must be 'greedy' or 'beam', got {decoder!r}")
        require_positive("model", n_mels=n_mels, sample_rate=sample_rate)
        if decoder == "beam":
            check_beam_options(lm_path, beam_size)
        if vocab is None and vocab_size == len(CharVocab()):
            vocab = CharVocab()
        if vocab is not None and len(vocab) != vocab_size:
            raise ValueError(f"the vocabulary has {len(vocab)} entries but vocab_size={vocab_size}")
        super().__init__(encoder, loss, lr, weight_decay, betas, warmup_ratio, min_lr_ratio, compile, cuda_graphs)
        self.save_hyperparameters({"vocab_size": vocab_size, "n_mels": n_mels, "subsampling": subsampling,
                                   "spec_augment": spec_augment, "decoder": decoder, "beam_size": beam_size,
                                   "lm_path": lm_path, "lm_weight": lm_weight, "word_score": word_score,
                                   "sample_rate": sample_rate})
        self.vocab = vocab
        self.subsample = ConvSubsampling(n_mels, self.encoder_config.dim, subsampling)
        self.spec_augment = SpecAugment() if spec_augment else None
        self.head = nn.Linear(self.encoder_config.dim, vocab_size)
        self._beam: BeamDecoder | None = None

    def _require_vocab(self) -> None:
        if self.vocab is None:
            raise RuntimeError("this model has no vocabulary: build it with vocab=..., or load it with "
                               "CTCSpeechRecognizer.load_from_checkpoint, which restores the one it was trained with")

    def setup(self, stage: str) -> None:
        """One WER/CER pair per evaluation split of the data module (metrics hold no weights). Data whose features
        are not the model's (another sample rate or number of mel bins) is refused, naming both; so is a beam decoder
        that cannot be built (a subword vocabulary, a language model file KenLM cannot read), which had stopped the
        sanity validation or the first prediction batch with a traceback."""
        super().setup(stage)
        self._require_vocab()
        datamodule = self.trainer.datamodule
        for key in ("sample_rate", "n_mels"):
            if getattr(datamodule, key, self.hparams[key]) != self.hparams[key]:
                raise RunRefused(f"data.{key}={getattr(datamodule, key)} but model.{key}={self.hparams[key]}: the "
                                 f"model reads features of its {key} (a checkpoint's: as it was trained)")
        self._refuse_longer_than_the_mixer(datamodule)
        if self.hparams.decoder == "beam":  # after the checks that cost nothing: this loads the language model
            try:
                self._beam_decoder()
            except ValueError as err:
                raise RunRefused(str(err)) from err
        self.val_names = list(datamodule.val_split_names) if hasattr(datamodule, "val_split_names") else ["val"]
        self.test_names = list(datamodule.test_split_names) if hasattr(datamodule, "test_split_names") else ["test"]
        self.metrics = nn.ModuleDict({
            f"{stage}_{i}_{kind}": cls()
            for stage, names in (("val", self.val_names), ("test", self.test_names))
            for i in range(len(names))
            for kind, cls in (("wer", torchmetrics.text.WordErrorRate), ("cer", torchmetrics.text.CharErrorRate))})

    def _refuse_longer_than_the_mixer(self, datamodule) -> None:
        """A mixer of bounded length (Linformer's, VMI-SA's `max_len`) shorter than the longest utterance the data
        module built is refused before the first batch, which would stop on it mid-epoch."""
        if self.encoder.longest_sequence() is None or not hasattr(datamodule, "longest_frames"):
            return
        frames = int(conv_out_length(torch.tensor(datamodule.longest_frames()), self.subsample.layers))
        what = f"the longest utterance ({frames} encoder frames after x{self.hparams.subsampling} subsampling)"
        problem = self.longer_than_the_mixer(frames, what, ", or lower data.max_duration")
        if problem:
            raise RunRefused(problem)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        if self.spec_augment is not None and self.training:
            features = self.spec_augment(features, lengths)
        x, out_lengths = self.subsample(features, lengths)
        padding_mask = torch.arange(x.shape[1], device=x.device)[None, :] >= out_lengths[:, None]
        out = self.encode(x, padding_mask)
        return self.head(out.hidden).float().log_softmax(-1), out_lengths, out

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        self._require_vocab()
        if self.hparams.decoder == "beam":
            return self._beam_decoder()(log_probs, lengths)
        return self.vocab.ctc_greedy_decode(log_probs, lengths)

    def _beam_decoder(self) -> BeamDecoder:
        """The beam decoder of the model's vocabulary, built once (it loads the language model)."""
        if self._beam is None:
            hp = self.hparams
            self._beam = BeamDecoder(self.vocab, hp.beam_size, hp.lm_path, hp.lm_weight, hp.word_score)
        return self._beam

    @torch.no_grad()
    def transcribe(self, audio: Sequence[torch.Tensor | np.ndarray | str | os.PathLike | io.IOBase],
                   batch_size: int = 8, sample_rate: int | None = None) -> list[str]:
        """Transcripts of mono float waveforms (1-D, at `sample_rate`, default the model's; resampled) or audio
        files and open binary files (any rate; resampled), with no data module and no Trainer: features are
        computed as the data module computes them. An input that cannot be used (integer or non-finite samples,
        too short for one analysis window, an unreadable file) is an error naming it and its position."""
        audio = list_of_inputs(audio, "transcribe", batch_size)
        rate = self.hparams.sample_rate
        features = LogMel(sample_rate=rate, n_mels=self.hparams.n_mels)
        feats = []
        for index, item in enumerate(audio):
            if isinstance(item, (str, os.PathLike, io.IOBase)):
                label = f"input {index} ({source_name(item)})"
                try:
                    wav = load_audio(item, rate)
                except AudioError as err:  # it named the file alone, not its place among the inputs
                    raise AudioError(label, err.reason) from err
            else:
                label = f"input {index} (a waveform)"
                wav = waveform_input(item, sample_rate or rate, rate, label)
            if wav.numel() < features.min_samples:
                raise ValueError(f"{label}: {wav.numel()} samples at {rate} Hz, shorter than one analysis window "
                                 f"({features.min_samples})")
            feats.append(features(wav))
        texts = []
        with self.predicting():
            for start in range(0, len(feats), batch_size):
                chunk = feats[start:start + batch_size]
                lengths = torch.tensor([f.shape[0] for f in chunk], device=self.device)
                batch = pad_sequence(chunk, batch_first=True).to(self.device, self.dtype)
                log_probs, out_lengths, _ = self(batch, lengths)
                texts += self.decode(log_probs, out_lengths)
        return texts

    def _loss(self, batch, stage: str):
        log_probs, lengths, out = self(batch["features"], batch["feature_lengths"])
        ctc = F.ctc_loss(log_probs.transpose(0, 1), batch["targets"], lengths, batch["target_lengths"],
                         blank=self.vocab.blank, zero_infinity=True)
        return self.objective(ctc, out, None, stage), log_probs, lengths

    def training_step(self, batch, batch_idx):
        if batch is None:
            return None
        return self._loss(batch, "train")[0]

    def _evaluate(self, batch, stage: str, names: list[str], dataloader_idx: int):
        if batch is None:
            return
        _, log_probs, lengths = self._loss(batch, stage)
        hyps, refs = self.decode(log_probs, lengths), batch["transcripts"]
        for kind in ("wer", "cer"):
            metric = self.metrics[f"{stage}_{dataloader_idx}_{kind}"]
            metric(hyps, refs)
            self.log(f"{stage}/{names[dataloader_idx]}/{kind}", metric, batch_size=len(refs),
                     add_dataloader_idx=False)
            if dataloader_idx == 0 and stage == "val":  # the checkpoint's monitor: one name whatever the split
                self.log(f"{stage}/{kind}", metric, batch_size=len(refs), add_dataloader_idx=False, prog_bar=True)

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._evaluate(batch, "val", self.val_names, dataloader_idx)

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._evaluate(batch, "test", self.test_names, dataloader_idx)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.vocab is not None:
            checkpoint["vocab"] = self.vocab.to_json()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """The checkpoint's vocabulary is the one the head was trained for; in a Trainer run, a different one
        from the data (changed data.vocab or data.vocab_size) is reported, since its ids mean other tokens. One the
        beam decoder cannot search (subwords) is refused here: a Trainer restores it after `setup` checked the
        data's."""
        super().on_load_checkpoint(checkpoint)
        if "vocab" not in checkpoint:
            return
        data_vocab = self.vocab if self._trainer is not None else None
        if data_vocab is not None and data_vocab.to_json() != checkpoint["vocab"]:
            rank_zero_warn("the data's vocabulary differs from the one this checkpoint was trained with; "
                           "the checkpoint's is used for decoding")
        self.vocab = vocab_from_json(checkpoint["vocab"])
        self._beam = None
        problem = beam_vocab_problem(self.vocab) if self.hparams.decoder == "beam" else None
        if problem is not None:
            raise RunRefused(problem)

    def predict_step(self, batch, batch_idx):
        """One row per input of the batch, in its order: {"audio_filepath", "text"}, or for a file that failed to
        load {"audio_filepath", "text": None, "error"}."""
        rows = []
        if "features" in batch:
            with without_training_terms():
                log_probs, lengths, _ = self(batch["features"], batch["feature_lengths"])
            rows = [{"audio_filepath": str(p), "text": t}
                    for p, t in zip(batch["audio_filepath"], self.decode(log_probs, lengths))]
        for position, path, error in batch.get("failed", []):  # ascending: each lands at its input's place
            rows.insert(position, {"audio_filepath": str(path), "text": None, "error": error})
        return rows
