"""Self-pretraining of the text encoder on the task's own training texts, or on texts without labels (a corpus):
masked language modelling (Devlin et al. 2019, BERT's corruption: 15 % of the real tokens are predicted, 80 % of
them blanked, 10 % replaced by a random token, 10 % kept), whose checkpoint then starts the classifier
(`--model.init_from`). Amos et al. 2024 ("Never Train from Scratch") find such self-pretraining on the downstream
data lifts both attention and SSMs on long-sequence benchmarks and narrows the gap between them.

Data (`MaskedTextDataModule`, whose docstring has the details): labels are never read. A labelled data.root is
carved as `--task text` carves it and only its training split trains, so the classifier's validation and test
texts never do; an unlabelled one (a .txt file, one text per line; a folder of .txt files; a table with a text
column only) is a corpus, data.val_fraction of it validating (drawn with data.seed). Reported: train/loss and
val/loss (the masked tokens' cross-entropy, plus Eq. 14's terms without the NCE ones; the checkpoint metric) and
train/acc, val/acc: the accuracy of the masked-token predictions.

The classifier must encode with the pretraining's tokenizer (`init_from` refuses another): the same data.* options
give it; after pretraining on another corpus, `--data.tokenizer=<its checkpoint>` does.

Where the paper leaves a gap: a blanked token's embedding is a learned mask vector rather than a [MASK] id (the
tokenizers here have none), and the output layer is the input embedding, transposed (tied) plus a bias, applied
to the hidden state scaled by dim^-0.5 as T5 does with its tied embedding (Raffel et al. 2020): the embedding rows
start at unit variance, so unscaled logits would start with a spread of about sqrt(dim) and a loss far above
log(vocab).

    infomamba fit --task text_mlm --config configs/imdb_mlm.yaml
    infomamba fit --task text --config configs/imdb.yaml --model.init_from runs/text_mlm/<run>/checkpoints/last.ckpt
    infomamba fit --task text_mlm --config configs/imdb_mlm.yaml --data.root aclImdb/train/unsup --run_dir runs/unsup
    infomamba fit --task text --config configs/imdb.yaml --data.tokenizer runs/unsup/checkpoints/last.ckpt \
        --model.init_from runs/unsup/checkpoints/last.ckpt
"""
from __future__ import annotations

import zlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from .module import TextClassifier, accuracy_metrics


def mask_positions(input_ids: torch.Tensor, padding_mask: torch.Tensor, rate: float, vocab_size: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT's corruption of (B, L) ids: (predicted, blanked, corrupted ids). Each real token is predicted with
    probability `rate`; of those, 80 % are blanked (`blanked`: the model sees the mask vector there), 10 % get a
    uniformly drawn id in `corrupted`, 10 % keep theirs. Padding is never predicted."""
    draw = torch.rand(input_ids.shape, device=input_ids.device, generator=generator)
    which = torch.rand(input_ids.shape, device=input_ids.device, generator=generator)
    random_ids = torch.randint(vocab_size, input_ids.shape, device=input_ids.device, generator=generator)
    predicted = (draw < rate) & ~padding_mask
    blanked = predicted & (which < 0.8)
    swapped = predicted & (which >= 0.9)
    return predicted, blanked, torch.where(swapped, random_ids, input_ids)


def sample_seeded_masks(input_ids: torch.Tensor, padding_mask: torch.Tensor, rate: float, vocab_size: int
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`mask_positions` drawn for each sample over its real tokens alone, from a generator seeded by their ids
    (CRC-32): a text gets the same masks whatever batch, padding, batch size or number of processes evaluates it,
    so validation scores the same masked tokens every epoch and under DDP as in one process. Drawn on the CPU
    (one small generator a sample) and moved to the ids' device."""
    ids, real = input_ids.cpu(), ~padding_mask.cpu()
    predicted, blanked, corrupted = torch.zeros_like(real), torch.zeros_like(real), ids.clone()
    for i, (row, keep) in enumerate(zip(ids, real)):
        tokens = row[keep][None]
        seed = zlib.crc32(tokens.numpy().tobytes())
        p, b, c = mask_positions(tokens, torch.zeros_like(tokens, dtype=torch.bool), rate, vocab_size,
                                 torch.Generator().manual_seed(seed))
        predicted[i, keep], blanked[i, keep], corrupted[i, keep] = p[0], b[0], c[0]
    return tuple(t.to(input_ids.device) for t in (predicted, blanked, corrupted))


class MaskedTextPretraining(TextClassifier):
    """Masked language model on the text task's frontend and encoder (same parameter names as `TextClassifier`,
    so that its checkpoint initialises one); the classifier's head is dropped.

    Args (beyond TextClassifier's): mask_rate: share of the real tokens predicted. Validation and test draw each
    text's masks from its own ids (`sample_seeded_masks`): the same every epoch, and the same whatever the batch
    size or number of processes, so val/acc is comparable across epochs and runs.
    """

    def __init__(self, *args, mask_rate: float = 0.15, **kwargs):
        super().__init__(*args, **kwargs)
        if not 0.0 < mask_rate < 1.0:
            raise ValueError(f"model.mask_rate must be in (0, 1), got {mask_rate}")
        if self.hparams.bigram_buckets:
            raise ValueError("model.bigram_buckets with --task text_mlm: a token's bigram with the next one would "
                             "give a blanked token away; pretrain without bigrams")
        self.save_hyperparameters({"mask_rate": mask_rate})
        dim = self.encoder_config.dim
        self.mask_embedding = nn.Parameter(torch.randn(dim) * 0.02)
        self.lm_bias = nn.Parameter(torch.zeros(self.hparams.vocab_size))
        self.metrics = accuracy_metrics(self.hparams.vocab_size)

    def make_head(self, dim: int) -> None:
        """None: the masked LM predicts tokens (`masked_logits`), not classes."""

    def masked_logits(self, input_ids: torch.Tensor, padding_mask: torch.Tensor,
                      masks: tuple[torch.Tensor, torch.Tensor, torch.Tensor]):
        """(logits at the predicted positions (N, vocab), their true ids (N,), the `EncoderOutput`) under `masks`,
        `mask_positions`' (predicted, blanked, corrupted ids)."""
        predicted, blanked, corrupted = masks
        tokens = self.embed_tokens(corrupted)
        tokens = torch.where(blanked.unsqueeze(-1), self.mask_embedding.to(tokens.dtype), tokens)
        out = self.encode_tokens(tokens, padding_mask)
        hidden = out.hidden[predicted] * self.encoder_config.dim ** -0.5
        return F.linear(hidden, self.embed.weight.to(hidden.dtype), self.lm_bias.to(hidden.dtype)), \
            input_ids[predicted], out

    def _step(self, batch, stage: str):
        ids, padding_mask = batch["input_ids"], batch["padding_mask"]
        draw = mask_positions if stage == "train" else sample_seeded_masks
        masks = draw(ids, padding_mask, self.hparams.mask_rate, self.hparams.vocab_size)
        logits, targets, out = self.masked_logits(ids, padding_mask, masks)
        # a sum over the predicted tokens, not a mean: a batch of a few short texts may draw none of them
        task_loss = F.cross_entropy(logits.float(), targets, reduction="sum") / max(targets.numel(), 1)
        loss = self.objective(task_loss, out, None, stage)
        metric = self.metrics[f"{stage}_acc"]
        if targets.numel():
            metric(logits.argmax(-1), targets)
        self.log(f"{stage}/acc", metric, batch_size=len(ids), prog_bar=True, on_epoch=True)
        return loss

    def predict_step(self, batch, batch_idx):
        raise NotImplementedError("--task text_mlm pretrains an encoder; predict with the fine-tuned --task text")
