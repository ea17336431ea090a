"""Image classification: PatchEmbed (keeps the grid) -> Encoder (bidirectional) -> mean pool -> head."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn
import torchmetrics

from infomamba import EncoderConfig
from infomamba.console import say
from infomamba.layers.checks import require_positive, require_within
from infomamba.layers.pooling import masked_mean
from infomamba.losses import LossWeights
from infomamba.mixers import sized_options, without_training_terms

from ..base import CompileOption, TaskModule, classification_loss, list_of_inputs
from .frontend import PatchEmbed

# Where a checkpoint keeps the image data module's state (Lightning stores a data module's `state_dict` under
# its class name): the normalisation the weights were trained with.
DATA_STATE_KEY = "ImageDataModule"


def soft_label_note(mixer: str, loss: LossWeights, data_hparams) -> str | None:
    """The note for a fit whose InfoNCE terms (Eq. 12, weighted by loss.beta; only InfoMamba layers report their
    streams) never train: MixUp and CutMix give every training batch soft labels, and Eq. 12 contrasts samples of
    one class, so `total_loss` leaves it out of such batches (the paper does not say how it meets mixed labels).
    None where the fit trains them or has none."""
    mixing = {key: data_hparams.get(key, 0.0) for key in ("mixup_alpha", "cutmix_alpha")}
    if mixer != "infomamba" or not (loss.use_nce and loss.beta > 0) or not any(mixing.values()):
        return None
    given = ", ".join(f"data.{key}={value}" for key, value in mixing.items() if value)
    return (f"[infomamba] note: with {given} every training batch has soft labels, and Eq. 12's InfoNCE terms "
            f"(loss.beta={loss.beta}) need one class a sample: this fit trains them on no batch (they are still "
            "computed on validation batches); set data.mixup_alpha=0 and data.cutmix_alpha=0 to train them")


def grid_sized(encoder: EncoderConfig, tokens: int) -> EncoderConfig:
    """`encoder` with a mixer of per-position parameters (Linformer, VMI-SA) given no max_len built for the
    `tokens` of the grid, every image's (`sized_options`), so that its size counts no row it never reads."""
    encoder.validate()
    return replace(encoder, mixer_options=sized_options(encoder.mixer, encoder.mixer_options, tokens))


def accuracies(num_classes: int) -> dict[str, int]:
    """The accuracies logged, name -> top k: top-1, and top-5 where there are more than 5 classes (of 5 or fewer,
    every label is among the top 5: a metric that is always 1)."""
    return {"acc": 1, **({"acc5": 5} if num_classes > 5 else {})}


class ImageClassifier(TaskModule):
    """Image classifier on the shared encoder; loss = CE (soft labels under MixUp/CutMix, optional label
    smoothing) + Eq. 14's auxiliary terms (InfoNCE only on batches with hard labels).

    TaskModule's arguments (encoder, loss, lr, ...) are documented there; these are the task's own.

    Args:
        num_classes: classes of the head (the data's; the CLI links it).
        in_chans: image channels, 1 or 3 (the data's; linked).
        image_size: side of the square input in pixels (the data's; linked), a multiple of patch_size.
        class_names: names of the classes (index = label id); None: "0", "1", ...
        patch_size: side of a patch in pixels (the token grid is image_size / patch_size per side).
        pos: position embedding, "learned" or "sincos".
        label_smoothing: of the training loss only, in [0, 1).
        stem: "patch" (one strided conv) or "conv" (a small convolutional stem), `frontend.PatchEmbed`.

    The sizes and class names are hyperparameters and a checkpoint of a fit with `ImageDataModule` also keeps
    its normalisation, so `ImageClassifier.load_from_checkpoint(path).predict_images([...])` needs no data.
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
        require_positive("model", num_classes=num_classes, in_chans=in_chans, image_size=image_size,
                         patch_size=patch_size)
        require_within("model", 0.0, 1.0, label_smoothing=label_smoothing)
        encoder = grid_sized(encoder if isinstance(encoder, EncoderConfig) else EncoderConfig(**encoder),
                             (image_size // patch_size) ** 2)
        super().__init__(encoder, loss, lr, weight_decay, betas, warmup_ratio, min_lr_ratio, compile, cuda_graphs)
        if self.encoder_config.causal:
            raise ValueError("image classification uses a bidirectional encoder: set model.encoder.causal=false")
        if image_size % patch_size:
            multiple = max(patch_size, image_size // patch_size * patch_size)
            raise ValueError(f"image_size {image_size} is not divisible by patch_size {patch_size}: set "
                             f"data.image_size to a multiple of it (e.g. {multiple})")
        side = image_size // patch_size
        problem = self.longer_than_the_mixer(side * side, f"the {side} x {side} = {side * side} patches of "
                                             f"data.image_size {image_size} in model.patch_size {patch_size}")
        if problem:
            raise ValueError(problem)
        self.save_hyperparameters({"num_classes": num_classes, "class_names": class_names, "in_chans": in_chans,
                                   "image_size": image_size, "patch_size": patch_size, "pos": pos, "stem": stem,
                                   "label_smoothing": label_smoothing})
        self.class_names = class_names
        # (mean, std) per channel of the data the weights were trained with; set by `on_load_checkpoint`.
        self.normalisation: tuple[tuple[float, ...], tuple[float, ...]] | None = None
        dim = self.encoder_config.dim
        self.patch = PatchEmbed(in_chans, dim, patch_size, pos=pos, img_size=image_size, stem=stem)
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))
        self.accuracies = accuracies(num_classes)
        # validate_args=False: the checks call unique() on every update, a device sync per step; the
        # data module guarantees labels in range.
        self.metrics = nn.ModuleDict({
            f"{s}_{k}": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes, top_k=t, validate_args=False)
            for s in ("train", "val", "test") for k, t in self.accuracies.items()})

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage != "fit" or not self.trainer.is_global_zero:
            return
        data = getattr(self.trainer.datamodule, "hparams", {})
        line = soft_label_note(self.encoder_config.mixer, self.loss_weights, data)
        if line is not None:
            say(line)

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
        for k in self.accuracies:
            metric = self.metrics[f"{stage}_{k}"]
            metric(logits, hard)
            self.log(f"{stage}/{k}", metric, batch_size=len(hard), prog_bar=k == "acc", on_epoch=True)
        return loss

    def predict_step(self, batch, batch_idx):
        """One row per input of the batch, in its order: {"path", "label", "score"}, or for a file that failed to
        decode {"path", "label": None, "score": None, "error"}."""
        rows = []
        if "images" in batch:
            with without_training_terms():
                logits, _ = self(batch["images"])
            score, pred = logits.float().softmax(-1).max(-1)
            rows = [{"path": str(p), "label": self.class_names[int(c)], "score": round(float(s), 6)}
                    for p, c, s in zip(batch["paths"], pred, score)]
        for position, path, reason in batch.get("failed", []):  # ascending: each lands at its input's place
            rows.insert(position, {"path": str(path), "label": None, "score": None, "error": reason})
        return rows

    @torch.no_grad()
    def predict_images(self, paths: Sequence[str | Path], batch_size: int = 32) -> list[dict]:
        """Classify image files with no data module and no Trainer: one {"path", "label", "score"} per file,
        in the order given.

        Each file is read in `in_chans` channels, resized and centre-cropped to `image_size` and normalised
        as the data module's predict batches are, with the checkpoint's normalisation. A path that is not a
        readable image file raises FileNotFoundError or ValueError naming it: a missing file or one whose header
        PIL does not identify before any is classified, one whose data is cut short or corrupt when it is read.
        """
        paths = list_of_inputs(paths, "predict_images", batch_size)
        if self.normalisation is None:
            raise RuntimeError("this model has no normalisation: load it with ImageClassifier.load_from_checkpoint "
                               "from a checkpoint of a fit with ImageDataModule, which keeps it")
        from .datamodule import ImageCollate, eval_transform  # torchvision: imported when images are read
        from .datasets import UNREADABLE, ImageFiles, check_image_file, describe_error

        files = ImageFiles([check_image_file(path) for path in paths], self.hparams.in_chans)
        transform = eval_transform(self.hparams.image_size)
        collate = ImageCollate(*self.normalisation, target_key="paths")
        rows = []
        with self.predicting():
            for start in range(0, len(files), batch_size):
                samples = []
                for i in range(start, min(start + batch_size, len(files))):
                    try:
                        samples.append(files[i])
                    except UNREADABLE as err:
                        raise ValueError(f"{files.name(i)} is not a readable image: {describe_error(err)}") from err
                batch = collate([(transform(image), path, []) for image, path in samples])
                images = batch["images"].to(self.device, self.dtype)
                rows += self.predict_step({"images": images, "paths": batch["paths"]}, 0)
        return rows

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Keep the normalisation the data module stored beside the weights, for `predict_images`."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get(DATA_STATE_KEY)
        if state is not None:
            self.normalisation = (tuple(state["mean"]), tuple(state["std"]))
