"""Text classification: token embedding + learned positions -> Encoder -> masked mean pool -> linear head."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchmetrics

from infomamba import EncoderConfig
from infomamba.losses import LossWeights
from infomamba.layers.pooling import masked_mean

from ..base import TaskModule


class TextClassifier(TaskModule):
    """Sequence classifier on the shared encoder; loss = CE + Eq. 14's auxiliary terms.

    Args (beyond TaskModule's): max_positions: size of the learned position table (>= data.max_length).
        head_dropout: dropout before the classifier.
    """

    def __init__(self, encoder: EncoderConfig = EncoderConfig(dim=64, depth=2), loss: LossWeights = LossWeights(),
                 lr: float = 1e-3, weight_decay: float = 0.05, betas: tuple[float, float] = (0.9, 0.98),
                 warmup_ratio: float = 0.05, min_lr_ratio: float = 0.01, max_positions: int = 4096,
                 head_dropout: float = 0.1):
        super().__init__(encoder, loss, lr, weight_decay, betas, warmup_ratio, min_lr_ratio)
        self.save_hyperparameters({"max_positions": max_positions, "head_dropout": head_dropout})

    def build(self, datamodule) -> None:
        dim = self.encoder_config.dim
        self.class_names = list(datamodule.class_names)
        self.embed = nn.Embedding(datamodule.vocab_size, dim, padding_idx=datamodule.pad_id)
        self.pos = nn.Parameter(torch.randn(self.hparams.max_positions, dim) * 0.02)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Dropout(self.hparams.head_dropout),
                                  nn.Linear(dim, datamodule.num_classes))
        n = datamodule.num_classes
        self.metrics = nn.ModuleDict({s: torchmetrics.Accuracy(task="multiclass", num_classes=n)
                                      for s in ("train_acc", "val_acc", "test_acc")})

    def forward(self, input_ids: torch.Tensor, padding_mask: torch.Tensor):
        L = input_ids.shape[1]
        if L > self.pos.shape[0]:
            raise ValueError(f"sequence of {L} tokens exceeds model.max_positions={self.pos.shape[0]}")
        out = self.encoder(self.embed(input_ids) + self.pos[:L], padding_mask)
        return self.head(masked_mean(out.hidden, padding_mask)), out

    def _step(self, batch, stage: str):
        logits, out = self(batch["input_ids"], batch["padding_mask"])
        labels = batch["labels"]
        loss = self.objective(F.cross_entropy(logits, labels), out, labels, stage)
        metric = self.metrics[f"{stage}_acc"]
        metric(logits.argmax(-1), labels)
        self.log(f"{stage}/acc", metric, batch_size=len(labels), prog_bar=True)
        return loss

    def predict_step(self, batch, batch_idx):
        logits, _ = self(batch["input_ids"], batch["padding_mask"])
        probs = logits.float().softmax(-1)
        score, pred = probs.max(-1)
        return [{"text": t, "label": self.class_names[int(p)], "score": round(float(s), 6)}
                for t, p, s in zip(batch["texts"], pred, score)]
