"""The LightningModule every task shares: encoder, Eq. 14 total loss, AdamW + warmup + cosine, logging."""
from __future__ import annotations

import contextlib
import io
import math
import os
import random
from collections.abc import Iterable
from dataclasses import asdict
from typing import Literal

import numpy as np

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import GradClipAlgorithmType, rank_zero_warn

from infomamba import Encoder, EncoderConfig
from infomamba.cuda_graphs import GraphedEncoder
from infomamba.layers.checks import require_within
from infomamba.losses import LossWeights, total_loss, weighted_terms
from infomamba.mixers import without_training_terms
from infomamba.tasks.checkpoint_file import other_model_problem
from infomamba.tasks.compile_note import note_compile_on_cpu
from infomamba.tasks.registry import class_path
from infomamba.tasks.size_note import note_size


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up over `warmup` steps, then cosine decay to `min_ratio` at `total`."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def rescheduled(before: tuple[int, int] | None, total: int, warmup_ratio: float, min_ratio: float) -> str | None:
    """A note for a resumed fit whose schedule is laid over `total` steps where its checkpoint's was laid over
    another number (`before`: that total and the step it stopped at; a larger max_epochs given again): from that
    step the learning rate follows the new schedule, which is where neither an uninterrupted run of the old length
    nor one of the new would be. None when nothing changed (or the checkpoint does not say)."""
    if before is None or before[0] in (None, total):
        return None
    old_total, step = before
    changed = (f"the learning-rate schedule was laid over {old_total} steps and is now laid over {total} (max_epochs, "
               f"max_steps, the data or the number of processes changed)")
    if total <= step:
        return (f"{changed}: it ends before step {step}, where the run stopped, so every step left trains at its "
                f"floor, {min_ratio:.3g} x lr")
    old = warmup_cosine(step, int(warmup_ratio * old_total), old_total, min_ratio)
    new = warmup_cosine(step, int(warmup_ratio * total), total, min_ratio)
    return (f"{changed}: from step {step} the learning rate is {new:.3g} x lr, not {old:.3g} x lr, and the run does "
            f"not end as an uninterrupted {total}-step run would")


def other_processes(before: int | None, world_size: int) -> str | None:
    """A note for a fit resumed on `world_size` processes from a checkpoint written by a fit of `before`. Each rank's
    share of an epoch changes: the steps per epoch, and a checkpoint written mid-epoch cannot say which of the epoch's
    batches are left (each rank had done its own), so some are trained on twice and others not at all, and ranks new
    to the run start their random streams from the seed. None when the number is the same or the checkpoint does not
    say (one written before checkpoints kept it)."""
    if before is None or before == world_size:
        return None
    return (f"this fit resumes on {world_size} process(es) (DDP ranks) a checkpoint written by {before}: each rank's "
            "share of an epoch, and with it the steps per epoch, changes, and the rest of an epoch stopped midway is "
            "not the batches the interrupted run had left, so the run does not continue as it would have; resume on "
            f"{before} process(es) (trainer.devices x trainer.num_nodes) to continue it exactly")


def check_optimizer_options(lr: float, weight_decay: float, betas: tuple[float, float], warmup_ratio: float,
                            min_lr_ratio: float) -> None:
    """AdamW's and the schedule's options refused when the model is built, naming the option: a negative lr had
    stopped the fit inside torch's AdamW (a traceback), and a warmup_ratio of 2 had warmed up for the whole run
    without a word. An lr of 0 passes, as torch's does: a step that leaves the weights as they began."""
    require_within("model", 0.0, lr=lr, weight_decay=weight_decay)
    require_within("model", 0.0, 1.0, warmup_ratio=warmup_ratio, **dict(zip(("betas[0]", "betas[1]"), betas)))
    require_within("model", 0.0, 1.0, include_high=True, min_lr_ratio=min_lr_ratio)


def moments_cut_to(optimizer_states: list[dict], params: list[torch.Tensor]) -> None:
    """Cut in place each tensor of a checkpoint's optimizer states (AdamW's moments) that is larger than its
    parameter (`params`, in the optimizer's order) to the parameter's leading block: the moments of a per-position
    table that an image model from before the task sized max_len to its grid kept for rows past it, which never had
    a gradient (`layers.positions.first_rows` cuts the table itself). A resumed fit had stopped in AdamW's first step
    on the shapes."""
    for state in optimizer_states:
        for index, moments in state.get("state", {}).items():
            shape = params[index].shape if index < len(params) else None
            for key, value in moments.items():
                if shape is not None and torch.is_tensor(value) and value.dim() == len(shape) and \
                        value.shape != shape and all(v >= s for v, s in zip(value.shape, shape)):
                    moments[key] = value[tuple(slice(0, s) for s in shape)]


def list_of_inputs(items, method: str, batch_size: int) -> list:
    """`items`, the inputs for `method` (predict_texts, predict_images, transcribe) as a list: any iterable of them
    (a generator, an open text file's lines; they had ended in "object of type 'generator' has no len()"), refused
    as one input where it is one: a bare str or path would be read character by character ("3 text(s) give no
    token"), an open binary file line by line, a 1-D waveform sample by sample; refused too where it is no iterable,
    or where `batch_size` is not a whole number >= 1 (0 had been range()'s error, 2.5 a slice's)."""
    if isinstance(items, (str, bytes, os.PathLike, io.BufferedIOBase, io.RawIOBase)):
        raise TypeError(f"{method} takes a list of inputs; got one {type(items).__name__}: pass [{items!r}]")
    if getattr(items, "ndim", 2) < 2:
        raise TypeError(f"{method} takes a list of inputs; got one {type(items).__name__} of shape "
                        f"{tuple(items.shape)}: pass [waveform]")
    if not isinstance(items, Iterable):
        raise TypeError(f"{method} takes a list of inputs, got {type(items).__name__}")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"{method}: batch_size must be a whole number >= 1, got {batch_size!r}")
    return list(items)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float, stage: str) -> torch.Tensor:
    """Cross-entropy (hard or soft labels) with label smoothing on training batches only, so that validation
    and test losses stay the plain CE that runs are compared on."""
    return F.cross_entropy(logits, labels, label_smoothing=label_smoothing if stage == "train" else 0.0)


def rng_states() -> dict:
    """The torch, Python, NumPy and CUDA random states, as tensors and plain tuples (so that a checkpoint
    holding them loads with torch.load(weights_only=True))."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def gathered_rng_states() -> dict | list[dict]:
    """`rng_states()` of every process of a distributed run, as a list by global rank (each rank draws its own
    dropout masks and hash noise, so its streams differ from rank 0's), else this process's. A collective:
    every rank calls it, as every rank builds each checkpoint."""
    states = rng_states()
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return states
    gathered = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, states)
    return gathered


def own_rng_states(saved: dict | list[dict] | None, rank: int) -> dict | None:
    """This rank's entry of what `gathered_rng_states` returned (None for a rank the saving run did not have)."""
    if isinstance(saved, list):
        return saved[rank] if rank < len(saved) else None
    return saved


def set_rng_states(states: dict) -> None:
    """Restore what `rng_states` returned."""
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def refused_precision(precision: str) -> str | None:
    """Why the model cannot run at the trainer's `precision` (Lightning's name for it), or None when it can. InfoMamba's
    concept filter forms its bucket embeddings in float32 whatever the activations' dtype (`layers.concepts`), which
    64-true's float64 activations meet in a product: the first batch had stopped with a dtype mismatch 50 frames deep.
    The other mixers ran a CPU fit step in float64, but the GPU kernels compute in float32 and no recipe trains in
    float64, so it is refused for every mixer, one rule for all. Each of the precisions named ran a CPU fit step."""
    if precision != "64-true":
        return None
    return (f"trainer.precision={precision} is not supported (InfoMamba's concept filter and the GPU kernels compute "
            "in float32); use 32-true, 16-mixed, bf16-mixed, bf16-true or 16-true")


def fused_step(device_types: set[str], precision: str) -> bool:
    """Whether AdamW runs as torch's fused kernels (`fused=True`) for parameters on `device_types` at the trainer's
    `precision`: where every parameter is on CUDA, except under 16-mixed, whose gradient scaler Lightning unscales
    before it clips gradients, which it refuses for a step that unscales inside (a fused one; without a scaler,
    `TaskModule.configure_gradient_clipping` clips for it). The fused step is a few launches where the default
    multi-tensor step is several per group of parameter tensors (InfoMamba-S holds 427); it computes the same update,
    up to rounding."""
    return device_types == {"cuda"} and precision != "16-mixed"


CompileOption = bool | Literal["default", "reduce-overhead", "max-autotune"]
"""`compile`: off, on (torch.compile's default mode), or one of its modes by name."""


class RunRefused(ValueError):
    """A fit or an evaluation this module cannot run as configured, found once the trainer is known (`setup`,
    `on_fit_start`); the CLI ends the command with its message as one line."""


class TaskModule(L.LightningModule):
    """Shared training logic. Subclasses build their frontend and head in `__init__` from size arguments
    (`num_classes`, `vocab_size`, ...) that the CLI links from the data module, and save them as
    hyperparameters, so that `load_from_checkpoint(path)` rebuilds the model with no data at hand.

    Args:
        encoder: the backbone (`--model.encoder.mixer=attention`, `--model.encoder.dim=384`, ...); also
            the dict the hyperparameters hold, which is how `load_from_checkpoint` passes it back.
        loss: Eq. 14 weights (`--model.loss.beta=0 --model.loss.gamma=0` is Table 5's "w/o MI"); a dict too.
        lr: AdamW's peak learning rate (after the warm-up, then cosine), >= 0.
        weight_decay: AdamW's decoupled weight decay (not on biases and other 1-D parameters: norms, scales),
            >= 0.
        betas: AdamW's betas, each in [0, 1).
        warmup_ratio: share of the steps spent warming up linearly, in [0, 1).
        min_lr_ratio: cosine floor as a share of lr, in [0, 1].
        compile: torch.compile the encoder when a Trainer runs the model (`infomamba fit --compile`); it is
            compiled in place, so the state_dict keys and the checkpoints stay the same. A mode name
            instead of true picks torch.compile's mode: `--compile=reduce-overhead` also replays the step as
            CUDA graphs, which is where the launch-bound SSM mixers gain most (docs/benchmarks.md: InfoMamba's
            224 px training step 197 -> 52 ms on an H200); each new input shape records a graph, so it suits
            fixed shapes (images) more than length-bucketed text. In the default mode the kernel path traces the
            sequence length as a symbol (one graph for every length); the CPU reference scan loops over time in
            Python, so there each new length recompiles, up to dynamo's limit.
        cuda_graphs: replay the encoder's training forward and backward, and its evaluation forward (validation,
            test, predictions), as CUDA graphs, without torch.compile (`infomamba.cuda_graphs.GraphedEncoder`;
            `infomamba fit --cuda_graphs`): capturing takes a few eager steps where compiling takes minutes. One
            device for training, few batch shapes (images; text and speech with `data.pad_multiple`), no gradient
            accumulation; other shapes run eagerly. Not with `compile`.
    """

    def __init__(self, encoder: EncoderConfig = EncoderConfig(), loss: LossWeights = LossWeights(), lr: float = 1e-3,
                 weight_decay: float = 0.05, betas: tuple[float, float] = (0.9, 0.98), warmup_ratio: float = 0.05,
                 min_lr_ratio: float = 0.01, compile: CompileOption = False, cuda_graphs: bool = False):
        super().__init__()
        check_optimizer_options(lr, weight_decay, betas, warmup_ratio, min_lr_ratio)
        if compile and cuda_graphs:
            raise ValueError("model.compile and model.cuda_graphs are two ways to replay CUDA graphs; pick one "
                             "(--compile=reduce-overhead compiles, --cuda_graphs captures the eager encoder)")
        self.encoder_config = encoder if isinstance(encoder, EncoderConfig) else EncoderConfig(**encoder)
        self.loss_weights = loss if isinstance(loss, LossWeights) else LossWeights(**loss)
        self.save_hyperparameters({"encoder": asdict(self.encoder_config), "loss": asdict(self.loss_weights),
                                   "lr": lr, "weight_decay": weight_decay, "betas": betas,
                                   "warmup_ratio": warmup_ratio, "min_lr_ratio": min_lr_ratio, "compile": compile,
                                   "cuda_graphs": cuda_graphs})
        self.encoder = Encoder(self.encoder_config)
        self.graphed_encoder = GraphedEncoder(self.encoder) if cuda_graphs else None
        self.recorded_terms: dict[str, torch.Tensor] | None = None
        self._schedule_steps: int | None = None  # the steps the learning-rate schedule is laid over
        self._resumed_schedule: tuple[int, int] | None = None  # a resumed checkpoint's: (its schedule steps, step)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Lightning's `load_from_checkpoint`, refusing in one line a checkpoint of another task's model (naming its
        class) or a file that is no checkpoint, where the constructor had failed on an argument it lacked."""
        problem = other_model_problem(checkpoint_path, cls)
        if problem:
            raise ValueError(problem)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def configure_model(self) -> None:
        if self.hparams.compile:
            self.encoder.compile(mode="default" if self.hparams.compile is True else self.hparams.compile)

    def setup(self, stage: str) -> None:
        """A precision the model cannot run is refused before the first batch (`refused_precision`); `compile` on a
        CPU is noted (`note_compile_on_cpu`), and a fit's mixer not size-matched to InfoMamba's (`note_size`)."""
        problem = refused_precision(self.trainer.precision)
        if problem:
            raise RunRefused(problem)
        if stage == "fit":
            note_size(self.encoder_config)
        if self.hparams.compile:  # (the device is asked for only then)
            note_compile_on_cpu(self.hparams.compile, self.trainer.strategy.root_device)

    def on_fit_start(self) -> None:
        if self.graphed_encoder is None:
            return
        if self.trainer.world_size > 1:
            raise RunRefused(f"model.cuda_graphs runs on one device; this fit has {self.trainer.world_size} "
                             "processes (use --compile=reduce-overhead for DDP)")
        if self.trainer.accumulate_grad_batches > 1:
            raise RunRefused("model.cuda_graphs: each replay overwrites the previous batch's gradients, so "
                             f"trainer.accumulate_grad_batches={self.trainer.accumulate_grad_batches} would lose "
                             "them; set it to 1")
        if self.device.type != "cuda":
            raise RunRefused(f"model.cuda_graphs needs a CUDA device; this fit runs on {self.device.type} (drop "
                             "--cuda_graphs, or give --model.cuda_graphs=false over a config that sets it: the "
                             "encoder would run eagerly while config.yaml said graphs)")

    def longer_than_the_mixer(self, tokens: int, what: str, also: str = "") -> str | None:
        """Why `tokens` tokens (`what` they are) are too many for a mixer of bounded length (Linformer's, VMI-SA's
        `max_len`: the first such batch would stop the run with a traceback), or None; `also` names another way out."""
        longest = self.encoder.longest_sequence()
        if longest is None or tokens <= longest:
            return None
        return (f"the {self.encoder_config.mixer} mixer's max_len={longest} is shorter than {what}: set max_len >= "
                f"{tokens} in model.encoder.mixer_options{also}")

    def encode(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None,
               grid: tuple[int, int] | None = None):
        """The encoder's output (`EncoderOutput`), through its CUDA-graph replays where `cuda_graphs` is on."""
        return (self.graphed_encoder or self.encoder)(x, padding_mask, grid)

    @contextlib.contextmanager
    def predicting(self):
        """Eval mode with the mixers' loss-only terms left out (`without_training_terms`: the same outputs), for the
        library's predictions (`predict_texts`, `predict_images`, `transcribe`); the previous mode restored."""
        was_training = self.training
        self.eval()
        try:
            with without_training_terms():
                yield
        finally:
            self.train(was_training)

    def _step(self, batch, stage: str):
        """Loss of one batch at `stage` ("train" / "val" / "test"), metrics logged."""
        raise NotImplementedError

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, "test")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The random streams (see `on_load_checkpoint`), the number of processes that fit, and the model's class, by
        which the CLI tells a checkpoint of another task's model before it reads the run's config."""
        checkpoint["rng_states"] = gathered_rng_states()
        checkpoint["infomamba_module"] = class_path(type(self))
        checkpoint["schedule_steps"] = self._schedule_steps
        if self._trainer is not None:  # (a checkpoint written by hand from a model: no number of processes)
            checkpoint["world_size"] = self.trainer.world_size

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A resumed run continues the random streams (dropout, Gumbel hash noise) where they stopped, each rank
        its own (`infomamba.tasks.resume` sets them once more when the run resumes mid-epoch); a fit resumed on
        another number of processes is told how it differs (`other_processes`); moments of rows the model no
        longer builds are cut (`moments_cut_to`).
        `load_from_checkpoint` (no trainer: a model loaded for use) leaves the caller's streams alone."""
        if self._trainer is None:
            return
        self._resumed_schedule = checkpoint.get("schedule_steps"), checkpoint.get("global_step", 0)
        note = other_processes(checkpoint.get("world_size"), self.trainer.world_size)
        if note and self.trainer.state.fn == TrainerFn.FITTING:
            rank_zero_warn(note)
        states = own_rng_states(checkpoint.get("rng_states"), self.trainer.global_rank)
        if states:
            set_rng_states(states)
        moments_cut_to(checkpoint.get("optimizer_states", []), [p for group in self.parameter_groups() for p in group])

    def objective(self, task_loss: torch.Tensor, out, labels: torch.Tensor | None, stage: str) -> torch.Tensor:
        """Eq. 14 with every part logged as `<stage>/<part>`; k_eff logged when the mixer reports it. A training
        step for which `recorded_terms` is a dict (set by `tasks.loss_gradients.LossGradientNorms`) leaves Eq. 14's
        weighted summands there."""
        parts = total_loss(task_loss, out.aux, labels, self.loss_weights)
        if stage == "train" and self.recorded_terms is not None:
            self.recorded_terms.update(weighted_terms(parts, self.loss_weights))
        batch_size = out.hidden.shape[0]
        for name, value in parts.items():
            self.log(f"{stage}/{name}", value.detach(), batch_size=batch_size, sync_dist=stage != "train",
                     prog_bar=name == "loss", on_epoch=True)
        k_eff = [a.k_eff for a in out.aux if a.k_eff is not None]
        if k_eff:
            self.log(f"{stage}/k_eff", torch.stack(k_eff).mean(), batch_size=batch_size, sync_dist=stage != "train",
                     on_epoch=True)
        return parts["loss"]

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Lightning's clipping, except for a fused step (`fused_step`) under a mixed precision without a gradient
        scaler (bf16-mixed): Lightning's mixed-precision plugin refuses to clip for any step that unscales inside,
        with a scaler or without one, so there its plain precision's clipping runs (no gradient is scaled)."""
        plugin = self.trainer.precision_plugin
        if (gradient_clip_val and getattr(optimizer, "_step_supports_amp_scaling", False)
                and getattr(plugin, "scaler", False) is None):
            algorithm = GradClipAlgorithmType((gradient_clip_algorithm or "norm").lower())
            Precision.clip_gradients(plugin, optimizer, gradient_clip_val, algorithm)
            return
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)

    def parameter_groups(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The trained parameters AdamW decays (matrices) and those it does not (biases, norms, scales), in order."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 or name.endswith(".bias") else decay).append(p)
        return decay, no_decay

    def configure_optimizers(self):
        hp = self.hparams
        decay, no_decay = self.parameter_groups()
        fused = fused_step({p.device.type for p in decay + no_decay}, self.trainer.precision)
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": hp.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=hp.lr, betas=tuple(hp.betas),
                                fused=fused or None)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        note = rescheduled(self._resumed_schedule, total, hp.warmup_ratio, hp.min_lr_ratio)
        if note:
            rank_zero_warn(note)
        self._schedule_steps = total
        warmup = int(hp.warmup_ratio * total)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: warmup_cosine(step, warmup, total, hp.min_lr_ratio))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
