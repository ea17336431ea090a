"""Image classification: PatchEmbed (keeps the grid) -> Encoder (bidirectional) -> mean pool -> head."""
from __future__ import annotations

import torch
import torch.nn as nn
import torchmetrics

from infomamba import EncoderConfig
from infomamba.losses import LossWeights
from infomamba.layers.pooling import masked_mean

from ..base import CompileOption, TaskModule, classification_loss
from .frontend import PatchEmbed


class ImageClassifier(TaskModule):
    """Image classifier on the shared encoder; loss = CE (soft labels under MixUp/CutMix, optional label
    smoothing) + Eq. 14's auxiliary terms (InfoNCE only on batches with hard labels).

    Args (beyond TaskModule's): num_classes, in_chans, image_size (the data's; the CLI links them),
    class_names (index = label id; None: "0", "1", ...), patch_size, pos ("learned" | "sincos"),
    label_smoothing, stem ("patch" | "conv": `frontend.PatchEmbed`).
    """

    def __init__(self, num_classes: int, encoder: EncoderConfig = EncoderConfig(dim=192, depth=6),
                 loss: LossWeights = LossWeights(), lr: float = 1e-3, weight_decay: float = 0.05,
                 betas: tuple[float, float] = (0.9, 0.999), warmup_ratio: float = 0.05, min_lr_ratio: float = 0.01,
                 patch_size: int = 16, pos: str = "learned", label_smoothing: float = 0.0, in_chans: int = 3,
                 image_size: int = 224, class_names: list[str] | None = None,
                 compile: CompileOption = False, cuda_graphs: bool = False,
                 stem: str = "patch"):
        class_names = [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
        super().__init__(encoder, loss, lr, weight_decay, betas, warmup_ratio, min_lr_ratio, compile, cuda_graphs)
        if self.encoder_config.causal:
            raise ValueError("image classification uses a bidirectional encoder: set model.encoder.causal=false")
        self.save_hyperparameters({"num_classes": num_classes, "class_names": class_names, "in_chans": in_chans,
                                   "image_size": image_size, "patch_size": patch_size, "pos": pos, "stem": stem,
                                   "label_smoothing": label_smoothing})
        self.class_names = class_names
        dim = self.encoder_config.dim
        self.patch = PatchEmbed(in_chans, dim, patch_size, pos=pos, img_size=image_size, stem=stem)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))
        top5 = min(5, num_classes)
        # validate_args=False: the checks call unique() on every update, a device sync per step; the
        # data module guarantees labels in range.
        self.metrics = nn.ModuleDict({
            f"{s}_{k}": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes, top_k=t, validate_args=False)
            for s in ("train", "val", "test") for k, t in (("acc", 1), ("acc5", top5))})

    def forward(self, images: torch.Tensor):
        tokens, grid = self.patch(images)
        out = self.encode(tokens, None, grid)
        return self.head(masked_mean(out.hidden, None)), out

    def _step(self, batch, stage: str):
        logits, out = self(batch["images"])
        labels = batch["labels"]
        task = classification_loss(logits, labels, self.hparams.label_smoothing, stage)
        loss = self.objective(task, out, labels, stage)
        hard = labels if labels.dim() == 1 else labels.argmax(-1)
        for k in ("acc", "acc5"):
            metric = self.metrics[f"{stage}_{k}"]
            metric(logits, hard)
            self.log(f"{stage}/{k}", metric, batch_size=len(hard), prog_bar=k == "acc")
        return loss

    def predict_step(self, batch, batch_idx):
        logits, _ = self(batch["images"])
        score, pred = logits.float().softmax(-1).max(-1)
        return [{"path": str(p), "label": self.class_names[int(c)], "score": round(float(s), 6)}
                for p, c, s in zip(batch["paths"], pred, score)]
