"""Which part of the objective drives the update: the gradient norm of each weighted summand of Eq. 14 (task, beta
NCE_h, beta NCE_r, gamma red, the MI-hash term), logged as `train/grad_norm/<part>` every N training steps.

    infomamba fit --task asr --config configs/speech_offline.yaml --model.loss.gamma=0.01 \\
        --trainer.callbacks+=infomamba.tasks.loss_gradients.LossGradientNorms --trainer.callbacks.every_n_steps=20

A penalty whose gradient dwarfs the task's takes over the clipped update (`gradient_clip_val` scales the sum);
this is how to see it. Each recorded step costs one extra backward pass per part. The norms are over every
trainable parameter, before clipping, of the local rank's batch (not reduced across DDP ranks).
"""
from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback


def gradient_norms(terms: dict[str, torch.Tensor], params: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """The L2 norm of d term / d params for each term (0 for a term no parameter reaches); keeps the graph."""
    norms = {}
    for name, term in terms.items():
        grads = torch.autograd.grad(term, params, retain_graph=True, allow_unused=True) if term.requires_grad else ()
        squares = [g.float().pow(2).sum() for g in grads if g is not None]
        norms[name] = torch.stack(squares).sum().sqrt() if squares else term.new_zeros((), dtype=torch.float32)
    return norms


class LossGradientNorms(Callback):
    """Logs `train/grad_norm/<part>` for each weighted summand of Eq. 14 every `every_n_steps` training steps
    (the module records its summands on those steps, `TaskModule.objective`)."""

    def __init__(self, every_n_steps: int = 50):
        if every_n_steps < 1:
            raise ValueError(f"LossGradientNorms: every_n_steps must be >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        pl_module.recorded_terms = {} if trainer.global_step % self.every_n_steps == 0 else None

    def on_before_backward(self, trainer, pl_module, loss):
        terms, pl_module.recorded_terms = pl_module.recorded_terms, None
        if not terms:
            return
        params = [p for p in pl_module.parameters() if p.requires_grad]
        for name, norm in gradient_norms(terms, params).items():
            # each recorded step weighs one in the epoch's mean (Lightning would guess a batch size from the batch)
            pl_module.log(f"train/grad_norm/{name}", norm, on_step=True, on_epoch=True, batch_size=1)
