"""Text classification: token embedding (+ hashed bigram embedding) + learned positions -> Encoder -> masked mean
pool -> linear head."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn as nn
import torchmetrics
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.nn.utils.rnn import pad_sequence

from infomamba import EncoderConfig
from infomamba.layers.checks import require_positive, require_within
from infomamba.layers.pooling import masked_mean
from infomamba.losses import LossWeights
from infomamba.mixers import without_training_terms

from ..base import CompileOption, RunRefused, TaskModule, classification_loss, list_of_inputs
from ..checkpoint_file import read_checkpoint_file
from ..registry import class_path, get_task, tasks_of
from ..paths import missing
from .tokenizer import TextTokenizer, clean_text


def drop_tokens(embedded: torch.Tensor, p: float) -> torch.Tensor:
    """Zero each token's embedding (B, L, D) with probability p, unscaled: a dropped word is absent, as in
    Iyyer et al.'s word dropout, not a louder copy of the others."""
    if p == 0.0:
        return embedded
    keep = torch.rand(embedded.shape[:-1], device=embedded.device) >= p
    return embedded * keep.unsqueeze(-1).to(embedded.dtype)


def bigram_ids(input_ids: torch.Tensor, pad_id: int, buckets: int) -> torch.Tensor:
    """Each position's bucket of (previous token, token), the previous of the first being pad_id: a multiplicative
    hash of the pair modulo `buckets` (the hashing trick of Joulin et al. 2017, "Bag of Tricks for Efficient Text
    Classification", which gives fastText its bigrams). (B, L) int64."""
    prev = nn.functional.pad(input_ids[:, :-1], (1, 0), value=pad_id)
    mixed = (prev.long() * 2654435761) ^ (input_ids.long() * 2246822519)
    return mixed % 4294967311 % buckets


def accuracy_metrics(num_classes: int) -> nn.ModuleDict:
    """One accuracy per stage ("train_acc", "val_acc", "test_acc"). validate_args=False: the checks call unique()
    on every update, a device sync per step; the data module guarantees labels in range."""
    return nn.ModuleDict({f"{s}_acc": torchmetrics.Accuracy(task="multiclass", num_classes=num_classes,
                                                             validate_args=False)
                          for s in ("train", "val", "test")})


def pretrained_key(name: str) -> bool:
    """Whether a state_dict entry is of the frontend or encoder that `init_from` carries over (not the head)."""
    return name == "pos" or name.startswith(("embed.", "bigrams.", "encoder."))


TEXT_TASKS = ("text", "text_mlm")  # whose checkpoints hold a text frontend and encoder that `init_from` can start


def not_a_text_model(saved: str | None) -> str | None:
    """Why a checkpoint whose model class is `saved` (its "infomamba_module") cannot start a text model: another
    task's, named (an ASR checkpoint had been refused for "2 frontend or encoder tensor(s) ... in only one of the two
    models"); None for a text task's model, or a checkpoint that kept no class."""
    if saved is None or saved in {class_path(get_task(task).module) for task in TEXT_TASKS}:
        return None
    owners = "".join(f" (--task {task})" for task in tasks_of(saved))
    return (f"is a checkpoint of {saved.split(':')[-1]}{owners}, not a text model's: init_from takes a checkpoint of "
            f"--task {' or --task '.join(TEXT_TASKS)}")


class TextClassifier(TaskModule):
    """Sequence classifier on the shared encoder; loss = CE + Eq. 14's auxiliary terms.

    The sizes come from the data (the CLI links them from the data module); the tokenizer is kept in
    the checkpoint, so `TextClassifier.load_from_checkpoint(path).predict_texts(["..."])` needs no data, and
    truncates as the fit did (`trained_max_length`).

    TaskModule's arguments (encoder, loss, lr, ...) are documented there; these are the task's own.

    Args:
        num_classes: classes of the head.
        vocab_size: embedding rows.
        pad_id: the padding token's id.
        class_names: names of the classes (index = label id); None: "0", "1", ...
        tokenizer: the data's tokenizer; None when `load_from_checkpoint` restores it from the checkpoint.
        max_positions: size of the learned position table (>= data.max_length).
        head_dropout: dropout before the classifier.
        label_smoothing: of the training loss only, in [0, 1).
        token_dropout: in training, each token's embedding is zeroed with this probability, its position
            embedding kept (word dropout, Iyyer et al. 2015; on IMDb 0.1 adds a point, docs/results.md).
        bigram_buckets: with N > 0, each token's embedding adds a learned embedding of its (previous token, token)
            pair hashed into N buckets (`bigram_ids`; fastText's bigrams), 0 at padding; word dropout drops both.
            Every mixer gets the same frontend; it adds N x dim parameters outside the encoder.
        init_from: a checkpoint whose frontend and encoder (`pretrained_key`) start this model's fit, e.g. the
            `--task text_mlm` self-pretraining of `pretrain.py` on the same data; read when a fit begins (not
            when it resumes: the run's own checkpoint has them then). Its tokenizer must be the data's: the same
            data.* options give it, or ``data.tokenizer`` naming that checkpoint (pretrained on another corpus).
    """

    def __init__(self, num_classes: int, vocab_size: int, encoder: EncoderConfig = EncoderConfig(dim=64, depth=2),
                 loss: LossWeights = LossWeights(), lr: float = 1e-3, weight_decay: float = 0.05,
                 betas: tuple[float, float] = (0.9, 0.98), warmup_ratio: float = 0.05, min_lr_ratio: float = 0.01,
                 max_positions: int = 4096, head_dropout: float = 0.1, label_smoothing: float = 0.0,
                 token_dropout: float = 0.0, bigram_buckets: int = 0, pad_id: int = 0,
                 class_names: list[str] | None = None, tokenizer: TextTokenizer | None = None,
                 init_from: str | None = None, compile: CompileOption = False, cuda_graphs: bool = False):
        class_names = [str(i) for i in range(num_classes)] if class_names is None else list(class_names)
        require_positive("model", vocab_size=vocab_size, max_positions=max_positions)
        require_within("model", 0.0, 1.0, label_smoothing=label_smoothing, token_dropout=token_dropout,
                       head_dropout=head_dropout)
        if len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
        if bigram_buckets < 0:
            raise ValueError(f"model.bigram_buckets must be >= 0 (0: no bigram embedding), got {bigram_buckets}")
        if tokenizer is not None and (tokenizer.vocab_size, tokenizer.pad_id) != (vocab_size, pad_id):
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} ids and pads with {tokenizer.pad_id}, "
                             f"but vocab_size={vocab_size} and pad_id={pad_id}")
        super().__init__(encoder, loss, lr, weight_decay, betas, warmup_ratio, min_lr_ratio, compile, cuda_graphs)
        self.save_hyperparameters({"num_classes": num_classes, "vocab_size": vocab_size, "pad_id": pad_id,
                                   "class_names": class_names, "max_positions": max_positions,
                                   "head_dropout": head_dropout, "label_smoothing": label_smoothing,
                                   "token_dropout": token_dropout, "bigram_buckets": bigram_buckets,
                                   "init_from": init_from})
        self.class_names = class_names
        self.tokenizer = tokenizer
        # data.max_length of the fit that trained the weights (None: unknown), predict_texts' default: set when a
        # fit starts, restored from the data module hyperparameters Lightning keeps in a checkpoint.
        self.trained_max_length: int | None = None
        dim = self.encoder_config.dim
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.bigrams = nn.Embedding(bigram_buckets, dim, _weight=torch.zeros(bigram_buckets, dim)) \
            if bigram_buckets else None  # from zero: training starts from the unigram model
        self.pos = nn.Parameter(torch.randn(max_positions, dim) * 0.02)
        self.head = self.make_head(dim)
        self.metrics = accuracy_metrics(num_classes)

    def make_head(self, dim: int) -> nn.Module | None:
        """The classifier on the pooled hidden state."""
        return nn.Sequential(nn.LayerNorm(dim), nn.Dropout(self.hparams.head_dropout),
                             nn.Linear(dim, self.hparams.num_classes))

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, D): the token embedding (+ the bigram embedding)."""
        tokens = self.embed(input_ids)
        if self.bigrams is not None:
            pairs = self.bigrams(bigram_ids(input_ids, self.hparams.pad_id, self.bigrams.num_embeddings))
            tokens = tokens + pairs * (input_ids != self.hparams.pad_id).unsqueeze(-1).to(pairs.dtype)
        return tokens

    def encode_tokens(self, tokens: torch.Tensor, padding_mask: torch.Tensor):
        """Embedded tokens (B, L, D) -> word dropout (training), positions, encoder: the `EncoderOutput`."""
        L = tokens.shape[1]
        if L > self.pos.shape[0]:
            raise ValueError(f"sequence of {L} tokens exceeds model.max_positions={self.pos.shape[0]}")
        tokens = drop_tokens(tokens, self.hparams.token_dropout if self.training else 0.0)
        return self.encode(tokens + self.pos[:L], padding_mask)

    def forward(self, input_ids: torch.Tensor, padding_mask: torch.Tensor):
        out = self.encode_tokens(self.embed_tokens(input_ids), padding_mask)
        return self.head(masked_mean(out.hidden, padding_mask)), out

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self.hparams.init_from and self.trainer.ckpt_path is None:
            self.load_pretrained(self.hparams.init_from)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.trained_max_length = self._data_max_length()
        if self.trained_max_length is None:
            return
        positions, longest = self.hparams.max_positions, self.encoder.longest_sequence()
        if self.trained_max_length > positions:
            raise RunRefused(f"data.max_length={self.trained_max_length} exceeds model.max_positions={positions}: the "
                             f"first batch with a text longer than {positions} tokens would stop the fit; set "
                             "model.max_positions >= data.max_length")
        if longest is not None and self.trained_max_length > longest:
            raise RunRefused(f"data.max_length={self.trained_max_length} exceeds the {self.encoder.config.mixer} "
                             f"mixer's max_len={longest}: the first batch with a text longer than {longest} tokens "
                             "would stop the fit; set max_len >= data.max_length in model.encoder.mixer_options, or "
                             "lower data.max_length")

    def _data_max_length(self) -> int | None:
        """The data.max_length of the Trainer's data module; None without a Trainer, a data module or that
        hyperparameter (batches from plain dataloaders: their truncation is unknown here)."""
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        return datamodule.hparams.get("max_length") if datamodule is not None else None

    def load_pretrained(self, path: str | Path) -> None:
        """Copy the frontend and encoder (`pretrained_key`) of the checkpoint at `path` into this model; a checkpoint
        that cannot start it is refused (`RunRefused`: the CLI ends the fit with its message as one line)."""
        if not Path(path).is_file():
            raise RunRefused(missing("model.init_from", path, "is not a file"))
        try:
            checkpoint = read_checkpoint_file(path, "model.init_from")
        except ValueError as err:
            raise RunRefused(str(err)) from err
        if "state_dict" not in checkpoint:
            raise RunRefused(f"model.init_from {path}: not a Lightning checkpoint (it has no state_dict)")
        problem = not_a_text_model(checkpoint.get("infomamba_module"))
        if problem:
            raise RunRefused(f"model.init_from {path} {problem}")
        ours = self.tokenizer.to_json() if self.tokenizer is not None else None
        if ours is not None and checkpoint.get("tokenizer", ours) != ours:
            raise RunRefused(f"model.init_from {path}: its tokenizer differs from the data's, so its embeddings "
                             f"belong to other ids; encode the data with it (--data.tokenizer={path}), or pretrain on "
                             "the same data.root, data.tokenizer and data.vocab_size")
        own = {k: v for k, v in self.state_dict().items() if pretrained_key(k)}
        theirs = {k: v for k, v in checkpoint["state_dict"].items() if pretrained_key(k)}
        differ = sorted(own.keys() ^ theirs.keys())
        if differ:
            raise RunRefused(f"model.init_from {path}: {len(differ)} frontend or encoder tensor(s) are in only one "
                             f"of the two models (e.g. {differ[0]}); pretrain the same model.encoder")
        for key, value in own.items():
            if theirs[key].shape != value.shape:
                raise RunRefused(f"model.init_from {path}: {key} is {tuple(theirs[key].shape)} there and "
                                 f"{tuple(value.shape)} here; pretrain with the same model.encoder, data.vocab_size, "
                                 "model.max_positions and model.bigram_buckets")
        self.load_state_dict(theirs, strict=False)
        rank_zero_info(f"model.init_from {path}: {len(theirs)} frontend and encoder tensors loaded; the head starts "
                       "fresh")

    def _step(self, batch, stage: str):
        logits, out = self(batch["input_ids"], batch["padding_mask"])
        labels = batch["labels"]
        loss = self.objective(classification_loss(logits, labels, self.hparams.label_smoothing, stage), out, labels,
                              stage)
        metric = self.metrics[f"{stage}_acc"]
        metric(logits.argmax(-1), labels)
        self.log(f"{stage}/acc", metric, batch_size=len(labels), prog_bar=True, on_epoch=True)
        return loss

    def predict_step(self, batch, batch_idx):
        """One row per text, with its "index": the 0-based line / row of `data.predict_path` it came from (the
        prediction writer's own index counts the texts kept, so it would shift at every skipped empty line)."""
        with without_training_terms():
            logits, _ = self(batch["input_ids"], batch["padding_mask"])
        return [{"index": int(i), **row} for i, row in zip(batch["index"], self._rows(batch["texts"], logits))]

    def _rows(self, texts: Sequence[str], logits: torch.Tensor) -> list[dict]:
        score, pred = logits.float().softmax(-1).max(-1)
        return [{"text": t, "label": self.class_names[int(p)], "score": round(float(s), 6)}
                for t, p, s in zip(texts, pred, score)]

    @torch.no_grad()
    def predict_texts(self, texts: Sequence[str], batch_size: int = 32, max_length: int | None = None) -> list[dict]:
        """Classify raw strings with no data module and no Trainer: one {"text", "label", "score"} per text.

        Texts are cleaned and tokenised as the data module does, truncated to `max_length` tokens (the head is
        kept; None: `trained_max_length`, the data.max_length the weights were trained with, as the evaluation
        saw them; `max_positions` where that is unknown, a checkpoint of a fit without a data module). Never more
        than `max_positions`.
        """
        texts = list_of_inputs(texts, "predict_texts", batch_size)
        if self.tokenizer is None:
            raise RuntimeError("this model has no tokenizer: build it with tokenizer=..., or load it with "
                               "TextClassifier.load_from_checkpoint, which restores the one it was trained with")
        limit = min(max_length or self.trained_max_length or self.hparams.max_positions, self.hparams.max_positions)
        ids = self.tokenizer.encode_batch([clean_text(t) for t in texts])
        empty = [t for t, i in zip(texts, ids) if not i]
        if empty:
            raise ValueError(f"{len(empty)} text(s) give no token, e.g. {empty[0]!r}")
        rows = []
        with self.predicting():
            for start in range(0, len(texts), batch_size):
                chunk = [torch.tensor(i[:limit]) for i in ids[start:start + batch_size]]
                lengths = torch.tensor([len(c) for c in chunk])
                input_ids = pad_sequence(chunk, batch_first=True, padding_value=self.hparams.pad_id)
                padding_mask = torch.arange(input_ids.shape[1])[None, :] >= lengths[:, None]
                logits, _ = self(input_ids.to(self.device), padding_mask.to(self.device))
                rows += self._rows(texts[start:start + batch_size], logits)
        return rows

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.tokenizer is not None:
            checkpoint["tokenizer"] = self.tokenizer.to_json()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """The checkpoint's tokenizer is the one the weights were trained with, so it replaces the one this
        model was built with; in a Trainer run a different one (changed data.tokenizer or data.vocab_size) is
        reported, since its ids mean other tokens. (`TextDataModule.load_state_dict` makes the data module
        encode with the checkpoint's too; the CLI builds an evaluation's model with none.)

        `trained_max_length` becomes the checkpoint's data.max_length (None in a checkpoint without its data
        module's hyperparameters); a Trainer run whose data module truncates elsewhere is reported. Its setting
        holds, as it may be a choice, but the model then sees other texts than in training (longer ones reach
        positions that were never trained)."""
        super().on_load_checkpoint(checkpoint)
        data_hparams = checkpoint.get(LightningDataModule.CHECKPOINT_HYPER_PARAMS_KEY) or {}
        self.trained_max_length = data_hparams.get("max_length")
        running = self._data_max_length()
        if None not in (self.trained_max_length, running) and running != self.trained_max_length:
            rank_zero_warn(f"this run's data.max_length={running} is not the data.max_length="
                           f"{self.trained_max_length} the checkpoint was trained with; texts are truncated at "
                           f"{running} (set data.max_length={self.trained_max_length} to evaluate as trained)")
        if "tokenizer" not in checkpoint:
            return
        data_tokenizer = self.tokenizer if self._trainer is not None else None
        if data_tokenizer is not None and data_tokenizer.to_json() != checkpoint["tokenizer"]:
            rank_zero_warn("the model was built with another tokenizer than the one this checkpoint was trained "
                           "with; the checkpoint's is used")
        self.tokenizer = TextTokenizer.from_json(checkpoint["tokenizer"])
