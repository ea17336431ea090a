"""`infomamba {fit,validate,test,predict} --task NAME [--config FILE] [overrides]`, plus `bench` and `summary`.

A LightningCLI per task: `--task` picks a registered LightningModule + LightningDataModule pair
(`infomamba.tasks.register_task`; built-in: text, image, asr) and only that task is imported; everything
else (`--model.encoder.mixer=attention`, `--trainer.devices=2`, `--data.root=...`) is LightningCLI's.
The sizes the model takes from the data (`num_classes`, `vocab_size`, the tokenizer, ...) are linked
from the built data module, so they are never set by hand. The resolved config is saved as config.yaml
in the run folder (runs/<task>/version_N/); `validate`, `test` and `predict` given a `--ckpt_path`
inside such a folder and no `--config` reuse that file, so the model is rebuilt exactly as trained.

Lightning is imported only once the task is loaded: the task's folder first sets aside a broken
torchvision, which would otherwise break `import lightning` (see `infomamba.tasks.optional_deps`).
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

from .tasks.registry import TaskSpec, get_task, list_tasks


def pop_task(argv: list[str]) -> tuple[str, list[str]]:
    """Remove `--task NAME` / `--task=NAME` from argv; the default is `text`."""
    rest, task, i = [], None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--task":
            if i + 1 >= len(argv):
                raise SystemExit("--task needs a value: one of " + ", ".join(list_tasks()))
            task, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--task="):
            task = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    task = task or "text"
    if task not in list_tasks():
        raise SystemExit(f"unknown --task {task!r}; available: {', '.join(list_tasks())}")
    return task, rest


def run_config_for(argv: list[str]) -> list[str]:
    """For validate/test/predict with --ckpt_path and no --config: prepend the run's saved config.yaml."""
    if not argv or argv[0] not in ("validate", "test", "predict") or any(a.startswith("--config") for a in argv):
        return argv
    ckpt = None
    for i, arg in enumerate(argv):
        if arg == "--ckpt_path" and i + 1 < len(argv):
            ckpt = argv[i + 1]
        elif arg.startswith("--ckpt_path="):
            ckpt = arg.split("=", 1)[1]
    if not ckpt or ckpt in ("last", "best"):
        return argv
    for folder in Path(ckpt).resolve().parents[:3]:
        if (folder / "config.yaml").is_file():
            print(f"[infomamba] using the run's config {folder / 'config.yaml'}", flush=True)
            return [argv[0], "--config", str(folder / "config.yaml"), *argv[1:]]
    return argv


def checkpointing_off(argv: list[str]) -> bool:
    """Whether the command line turns checkpointing off (then no ModelCheckpoint is added by default)."""
    joined = " ".join(argv).replace("=", " ").split()
    return any(a == "--trainer.enable_checkpointing" and i + 1 < len(joined) and joined[i + 1].lower() == "false"
               for i, a in enumerate(joined))


def trainer_defaults(task: TaskSpec, checkpointing: bool = True) -> dict:
    import torch
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from .tasks.epoch_summary import EpochSummary
    from .tasks.prediction_writer import JsonLinesPredictionWriter

    monitor, mode = task.monitor
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    checkpoints = [
        ModelCheckpoint(monitor=monitor, mode=mode, filename="best-{epoch}-{step}"),
        ModelCheckpoint(filename="latest-{epoch}-{step}", save_last="link"),  # last.ckpt: every epoch
    ] if checkpointing else []
    return {
        "default_root_dir": f"runs/{task.name}",
        "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                   "init_args": {"save_dir": "runs", "name": task.name}},
        "callbacks": [*checkpoints, LearningRateMonitor(logging_interval="step"), EpochSummary(),
                      JsonLinesPredictionWriter()],
        "plugins": [{"class_path": "infomamba.tasks.checkpoint_io.AtomicCheckpointIO"}],
        "use_distributed_sampler": False,
        "precision": "bf16-mixed" if bf16 else "32-true",
        "log_every_n_steps": 10,
        "max_epochs": task.max_epochs,
    }


def load_task(name: str) -> tuple[TaskSpec, type, type]:
    """The registered task and its two classes; a task whose dependencies are missing exits with one line."""
    spec = get_task(name)
    try:
        module_cls, data_cls = spec.load()
    except (ImportError, AttributeError) as err:
        raise SystemExit(f"--task {name} is not available: {err}") from err
    return spec, module_cls, data_cls


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        from .bench import main as bench_main
        return bench_main(argv[1:])
    if argv and argv[0] == "summary":
        from .summary import main as summary_main
        return summary_main(argv[1:])
    name, rest = pop_task(argv)
    task, module_cls, data_cls = load_task(name)
    from lightning.pytorch.cli import LightningCLI

    class TaskCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            for source, target in task.links.items():
                parser.link_arguments(f"data.{source}", f"model.{target}", apply_on="instantiate")

    # sys.argv stays whole: Lightning's DDP launcher re-runs it (with --task) in every child process.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    TaskCLI(module_cls, data_cls, args=run_config_for(rest),
            trainer_defaults=trainer_defaults(task, checkpointing=not checkpointing_off(rest)),
            save_config_kwargs={"overwrite": True}, seed_everything_default=0,
            parser_kwargs={"prog": f"infomamba --task {name}"})


if __name__ == "__main__":
    main()
