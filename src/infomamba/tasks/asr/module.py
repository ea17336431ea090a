"""CTC speech recognition: log-mel -> SpecAugment -> conv subsampling -> Encoder -> CTC head.

WER and CER come from torchmetrics (errors and reference lengths are summed over DDP ranks before
dividing), one pair per evaluation split (`val/<split>/wer`, `test/<split>/wer`); `val/wer` is the
first validation split's, for checkpointing. Loss = CTC + Eq. 14's redundancy and MI-hash terms
(no class label, so InfoNCE is off).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchmetrics

from infomamba import EncoderConfig
from infomamba.losses import LossWeights

from ..base import TaskModule
from .audio import SpecAugment
from .beam import BeamDecoder
from .subsampling import ConvSubsampling


class CTCSpeechRecognizer(TaskModule):
    """Args (beyond TaskModule's): n_mels, subsampling (4 | 8), spec_augment (on/off), decoder ("greedy" |
    "beam"), beam_size, lm_path (KenLM binary/arpa for the beam decoder), lm_weight, word_score."""

    def __init__(self, encoder: EncoderConfig = EncoderConfig(dim=144, depth=6), loss: LossWeights = LossWeights(use_nce=False),
                 lr: float = 2e-3, weight_decay: float = 0.01, betas: tuple[float, float] = (0.9, 0.98),
                 warmup_ratio: float = 0.1, min_lr_ratio: float = 0.01, n_mels: int = 80, subsampling: int = 4,
                 spec_augment: bool = True, decoder: str = "greedy", beam_size: int = 50,
                 lm_path: str | None = None, lm_weight: float = 2.0, word_score: float = 0.0):
        if decoder not in ("greedy", "beam"):
            raise ValueError(f"model.decoder must be 'greedy' or 'beam', got {decoder!r}")
        super().__init__(encoder, loss, lr, weight_decay, betas, warmup_ratio, min_lr_ratio)
        self.save_hyperparameters({"n_mels": n_mels, "subsampling": subsampling, "spec_augment": spec_augment,
                                   "decoder": decoder, "beam_size": beam_size, "lm_path": lm_path,
                                   "lm_weight": lm_weight, "word_score": word_score})
        self.subsample = ConvSubsampling(n_mels, encoder.dim, subsampling)
        self.spec_augment = SpecAugment() if spec_augment else None

    def build(self, datamodule) -> None:
        self.vocab = datamodule.vocab
        self.head = nn.Linear(self.encoder_config.dim, len(self.vocab))
        self.val_names = list(datamodule.val_split_names) if hasattr(datamodule, "val_split_names") else ["val"]
        self.test_names = list(datamodule.test_split_names) if hasattr(datamodule, "test_split_names") else ["test"]
        self.metrics = nn.ModuleDict({
            f"{stage}_{i}_{kind}": cls()
            for stage, names in (("val", self.val_names), ("test", self.test_names))
            for i in range(len(names))
            for kind, cls in (("wer", torchmetrics.text.WordErrorRate), ("cer", torchmetrics.text.CharErrorRate))})
        self.beam = (BeamDecoder(self.vocab, self.hparams.beam_size, self.hparams.lm_path, self.hparams.lm_weight,
                                 self.hparams.word_score) if self.hparams.decoder == "beam" else None)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        if self.spec_augment is not None and self.training:
            features = self.spec_augment(features, lengths)
        x, out_lengths = self.subsample(features, lengths)
        padding_mask = torch.arange(x.shape[1], device=x.device)[None, :] >= out_lengths[:, None]
        out = self.encoder(x, padding_mask)
        return self.head(out.hidden).float().log_softmax(-1), out_lengths, out

    def decode(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        if self.beam is not None:
            return self.beam(log_probs, lengths)
        return self.vocab.ctc_greedy_decode(log_probs, lengths)

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
            if dataloader_idx == 0:
                self.log(f"{stage}/{kind}", metric, batch_size=len(refs), add_dataloader_idx=False, prog_bar=True)

    def validation_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._evaluate(batch, "val", self.val_names, dataloader_idx)

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._evaluate(batch, "test", self.test_names, dataloader_idx)

    def predict_step(self, batch, batch_idx):
        log_probs, lengths, _ = self(batch["features"], batch["feature_lengths"])
        return [{"audio_filepath": str(p), "text": t}
                for p, t in zip(batch["audio_filepath"], self.decode(log_probs, lengths))]
