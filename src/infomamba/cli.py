"""`infomamba {fit,validate,test,predict} --task NAME [--config FILE] [overrides]`, plus `bench`, `summary`
and `diagnose`.

A LightningCLI per task: `--task` picks a registered LightningModule + LightningDataModule pair
(`infomamba.tasks.register_task`; built-in: text, image, asr) and only that task is imported; everything
else (`--model.encoder.mixer=attention`, `--trainer.devices=2`, `--data.root=...`) is LightningCLI's.
The sizes the model takes from the data (`num_classes`, `vocab_size`, the tokenizer, ...) are linked
from the built data module, so they are never set by hand. The resolved config is saved as config.yaml
in the run folder (runs/<task>/version_N/); `validate`, `test` and `predict` given a `--ckpt_path`
inside such a folder and no `--config` reuse that file, so the model is rebuilt exactly as trained.

Run folders (`infomamba.tasks.run_dir`): every run claims its own `version_N` (or `--run_dir PATH`);
`fit --ckpt_path last` continues the newest run of the same task and logger name that has a
`checkpoints/last.ckpt`, in its folder and with its config.yaml (options given again override it).
SIGINT / SIGTERM stop a fit after the running step with `last.ckpt` written there
(`infomamba.tasks.interrupt`). `--compile` is short for `--model.compile=true` (`--compile=MODE` for a
torch.compile mode, e.g. reduce-overhead), `--cuda_graphs` for `--model.cuda_graphs=true` (the eager
encoder's training step replayed as CUDA graphs, no compiling); `--print_config` prints
the config with every option's help as a comment.

Lightning is imported only once the task is loaded: the task's folder first sets aside a broken
torchvision, which would otherwise break `import lightning` (see `infomamba.tasks.optional_deps`).
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import importlib
import importlib.util
import logging
import multiprocessing
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import NamedTuple

from .config_errors import config_files, given_keys, parse_error_message, yaml_problem
from .console import guard_pipes, one_line_warnings, say
from .plugins import PluginError, load_plugins
from .tasks.registry import TaskSpec, get_task, list_tasks, other_task_model

# Printed by default runs (fit, a resumed fit, predict) with nothing for the user to do (lightning 2.6.6).
QUIET_WARNINGS = (
    "LightningCLI's args parameter",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
    "The '(train|val|test|predict)_dataloader' does not have many workers",
    # A fit that ends before any validation (max_steps): no best checkpoint is chosen, last.ckpt is kept.
    r"`ModelCheckpoint\(monitor=.*could not find the monitored key",
    # Resuming mid-epoch: `ResumeMidEpoch` continues the epoch where it stopped.
    "You're resuming from a checkpoint that ended before the epoch ended",
    # A resumed run writes into its own run folder.
    "Checkpoint directory .* exists and is not empty",
    # validate / test / predict from a checkpoint: its callbacks' state is the fit's, whose folder it names.
    "The dirpath has changed from",
    # Predict: LengthBucketBatchSampler in evaluation mode yields every sample once.
    "You are using a custom batch sampler `LengthBucketBatchSampler` for prediction",
    # DDP: train values are logged for their epoch means too, unsynced (sync_dist would all-reduce every step's).
    r"It is recommended to use `self.log\('train/",
)
QUIET_LOGS = ("💡 Tip:",)
APPS = ("bench", "summary", "diagnose")  # subcommands that are plain programs (`infomamba.<name>.main`)
TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
EVALUATIONS = ("validate", "test", "predict")  # subcommands that need a trained checkpoint
WRITES = {"validate": "metrics", "test": "metrics", "predict": "predictions"}  # what an evaluation writes
LIMITS = tuple(f"trainer.limit_{stage}_batches" for stage in ("train", "val", "test", "predict"))
RUN_DIR_HELP = ("this run's folder (logs, config.yaml, checkpoints/), created; default: a new "
                "<logger save_dir>/<name>/version_N (runs/<task>/version_N). With fit --ckpt_path last: the run to "
                "continue (default: the newest one with a checkpoints/last.ckpt).")


def overview() -> str:
    """What `infomamba` and `infomamba --help` print: the commands, the tasks and where each one's options are."""
    return f"""usage: infomamba {{fit,validate,test,predict}} [--task TASK] [--config FILE] [options]
       infomamba {{bench,summary,diagnose}} [options]

  fit        train a model (validating as it goes); --ckpt_path last continues the newest run
  validate   score a checkpoint (--ckpt_path FILE) on the validation split
  test       score a checkpoint on the test split
  predict    write predictions.jsonl for data.predict_path with a checkpoint
  bench      latency, throughput, training-step time and peak memory per mixer (a GPU)
  summary    parameter counts and forward FLOPs of mixers, as a markdown table
  diagnose   the paper's consistency-boundary diagnostics on a trained checkpoint

tasks: {", ".join(list_tasks())} (default text: generated ListOps until data.root or data.hub_id is set)
every option of a task, with its help: infomamba fit --task TASK --help (--print_config: as YAML)
mixers (--model.encoder.mixer): python -c 'import infomamba; print(infomamba.list_mixers())'"""


class Terminated(BaseException):
    """A SIGTERM that no fit's training handles (`StopOnSignal` does from the first step): raised where the command
    is, as Ctrl-C's KeyboardInterrupt, so that the folder it claimed is taken back as after any failure. Python's
    default had ended the process at once, and a run killed while its data loaded left a folder holding only its
    lock, which the requeued command could neither claim (it exists) nor continue (no checkpoint)."""


class Interrupts(list):
    """Ctrl-C's, noted before each interrupts as usual (KeyboardInterrupt): Lightning catches that of an evaluation
    or of a fit setting up and exits with 1, which the CLI then ends as an uncaught one, with
    `stopped_outside_training`'s line and the shell's 130 (a fit's steps stop by `StopOnSignal`); a SIGTERM raises
    `Terminated` (Lightning's own handler, from a fit's start, runs this one after its own); `restore` puts the
    handlers before them back."""

    def __init__(self) -> None:
        super().__init__()
        self.main = threading.current_thread() is threading.main_thread()
        self.previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
        if self.main:
            signal.signal(signal.SIGINT, self.on_sigint)
            signal.signal(signal.SIGTERM, self.on_sigterm)

    def on_sigint(self, signum, frame):
        self.append(signum)
        raise KeyboardInterrupt

    @staticmethod
    def on_sigterm(signum, frame):
        raise Terminated

    def restore(self) -> None:
        if self.main:
            for signum, previous in self.previous.items():
                signal.signal(signum, signal.SIG_DFL if previous is None else previous)


def refusal_without_label(err: SystemExit) -> bool:
    """Whether `err` is a one-line refusal (its code a message) that does not yet name the command it stops."""
    return isinstance(err.code, str) and not err.code.startswith("infomamba")


def stopped_outside_training(err: BaseException, label: str, claimed: list[Claim | None],
                             command: str | None = "fit") -> SystemExit | None:
    """The one-line exit of a command that Ctrl-C or SIGTERM stopped outside a fit's training steps (setting up,
    reading data; a fit's steps stop by `StopOnSignal`), or that a second Ctrl-C stopped at once inside them, or that
    either stopped during an evaluation (`command` validate, test or predict): 128 + the signal's number, what was
    written, and the folders it claimed that were taken back. None for other errors."""
    signum = {KeyboardInterrupt: signal.SIGINT, Terminated: signal.SIGTERM}.get(type(err))
    if signum is None:
        return None
    taken_back = [str(claim.folder) for claim in filter(None, claimed) if not claim.folder.exists()]
    said = f"; took back {', '.join(taken_back)}, which it had claimed" if taken_back else ""
    if command in EVALUATIONS:
        kept = [str(claim.folder) for claim in filter(None, claimed) if claim.folder.exists()]
        written = f"what it wrote is in {', '.join(kept)}" if kept else f"no {WRITES[command]} were written"
        say(f"{label}: stopped by {signum.name} before it finished: {written}{said}", file=sys.stderr)
        return SystemExit(128 + signum)
    how = "at once, outside a training step or by a second Ctrl-C" if signum == signal.SIGINT else \
        "outside a training step"
    say(f"{label}: stopped by {signum.name} {how}: nothing after the last checkpoint was saved{said}", file=sys.stderr)
    return SystemExit(128 + signum)


def check_command(argv: list[str]) -> None:
    """A first word that is no command (`infomamba tables`, `infomamba fitt`) is one line naming every command and
    the nearest; Lightning's parser had named only the trainer's four, under a task the user never gave."""
    import difflib

    commands = TRAINER_COMMANDS + APPS
    if not argv or argv[0].startswith("-") or argv[0] in commands:
        return
    near = difflib.get_close_matches(argv[0], commands, n=1)
    raise SystemExit(f"infomamba: unknown command {argv[0]!r}{f'; did you mean {near[0]}?' if near else ''} "
                     f"(commands: {', '.join(TRAINER_COMMANDS)} with --task; {', '.join(APPS)})")


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


def ckpt_path_arg(argv: list[str]) -> str | None:
    """The --ckpt_path given on the command line (the last one), or None."""
    ckpt = None
    for i, arg in enumerate(argv):
        if arg == "--ckpt_path" and i + 1 < len(argv):
            ckpt = argv[i + 1]
        elif arg.startswith("--ckpt_path="):
            ckpt = arg.split("=", 1)[1]
    return ckpt


@functools.lru_cache(maxsize=1)
def read_checkpoint(path: str) -> dict:
    """The checkpoint file at `path` through a memory map (no weights read), once per command: the task check and
    an evaluation's sizes and data state both read it before anything is built."""
    import torch

    return torch.load(path, map_location="cpu", mmap=True, weights_only=False)


def note(line: str) -> None:
    """Print `line` once, on the first rank (under DDP every rank runs the CLI)."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    rank_zero_only(print)(line, flush=True)


def shown_changes(changes, limit: int = 4) -> str:
    """(key, value there, value here) triples as "key A there, B here; ...", at most `limit` of them."""
    shown = "; ".join(f"{key} {there!r} there, {here!r} here" for key, there, here in changes[:limit])
    return shown + (f" and {len(changes) - limit} more" if len(changes) > limit else "")


def checkpoint_problem(ckpt: str | Path, task: str, module) -> str | None:
    """Why the file `ckpt` cannot be loaded by `task`'s model `module`: it is no checkpoint, or one of another
    task's model (`other_task_model`); None when it can (checkpoints written before the model's class was kept
    pass)."""
    from .tasks.checkpoint_file import not_a_checkpoint

    try:
        saved = read_checkpoint(str(ckpt)).get("infomamba_module")
    except Exception as err:  # torch.load raises what the pickle or zip reader met
        return not_a_checkpoint(err)
    return other_task_model(saved, task, module)


def check_checkpoint_task(ckpt: str | None, task: TaskSpec, label: str) -> None:
    """A --ckpt_path file of another task's model ends the command (`label`) with one line naming its task (before
    the run's config.yaml, of that other task, would be read); a file that is no checkpoint, with one line too."""
    if not ckpt or ckpt in ("last", "best") or not Path(ckpt).is_file():
        return
    problem = checkpoint_problem(ckpt, task.name, task.module)
    if problem:
        raise SystemExit(f"{label}: --ckpt_path {ckpt} {problem}")


def saved_config(ckpt: str | Path) -> Path | None:
    """The run's config.yaml beside a checkpoint: in its folder or up to three folders above it, or None."""
    return next((folder / "config.yaml" for folder in Path(ckpt).resolve().parents[:3]
                 if (folder / "config.yaml").is_file()), None)


def run_config_for(argv: list[str]) -> list[str]:
    """For validate/test/predict with --ckpt_path and no --config: prepend the run's saved config.yaml. A fit from
    a checkpoint file (a new run from its training state) takes this command's options, said in a note when the
    run's config.yaml is there: its data options are not the defaults this fit reads with."""
    if not argv or any(a.startswith("--config") for a in argv):
        return argv
    ckpt = ckpt_path_arg(argv)
    if not ckpt or ckpt in ("last", "best") or argv[0] not in (*EVALUATIONS, "fit"):
        return argv
    config = saved_config(ckpt)
    if config is None:
        return argv
    if argv[0] == "fit":
        print(f"[infomamba] note: this fit starts from {ckpt} with this command's data and trainer options, not "
              f"those of its run ({config}); give --config {config} to train on the same data, or --ckpt_path last "
              "to continue that run", flush=True)
        return argv
    print(f"[infomamba] using the run's config {config}", flush=True)
    return with_config(argv, config)


def with_config(argv: list[str], config: Path) -> list[str]:
    """argv with `--config config` right after the subcommand, unless it gives a --config of its own."""
    if any(a.startswith("--config") for a in argv):
        return argv
    return [argv[0], "--config", str(config), *argv[1:]]


def optimizer_override_note(argv: list[str]) -> str | None:
    """What `--optimizer` / `--lr_scheduler` (LightningCLI's) replace, said before a fit that gives them: the model's
    own AdamW with its no-decay parameter groups and its warm-up + cosine schedule, so that the --model.lr,
    weight_decay, betas, warmup_ratio and min_lr_ratio options no longer act."""
    given = sorted({a.split("=", 1)[0].split(".", 1)[0] for a in argv
                    if a.startswith(("--optimizer", "--lr_scheduler"))})
    if not given or not argv or argv[0] != "fit":
        return None
    verb = "replaces" if len(given) == 1 else "replace"
    return (f"[infomamba] {' and '.join(given)} {verb} the model's AdamW (no weight decay on biases and norms) and "
            "its warm-up + cosine schedule: --model.lr, weight_decay, betas, warmup_ratio and min_lr_ratio do not act")


def shorthands(argv: list[str]) -> list[str]:
    """`--compile` -> `--model.compile=true` (`--compile=MODE` -> `--model.compile=MODE`), `--cuda_graphs` ->
    `--model.cuda_graphs=true`; a bare `--print_config` prints comments (needs ruamel.yaml)."""
    comments = bool(importlib.util.find_spec("ruamel") and importlib.util.find_spec("ruamel.yaml"))
    out = []
    for arg in argv:
        if arg == "--compile":
            arg = "--model.compile=true"
        elif arg.startswith("--compile="):
            arg = "--model.compile=" + arg.split("=", 1)[1]
        elif arg == "--cuda_graphs":
            arg = "--model.cuda_graphs=true"
        elif arg == "--print_config" and comments:
            arg = "--print_config=comments"
        elif arg.startswith("--print_config=") and "comments" in arg and not comments:
            raise SystemExit("--print_config=comments needs ruamel.yaml: pip install ruamel.yaml")
        out.append(arg)
    return out


def without_print_config(args: list[str]) -> list[str]:
    """`args` less their `--print_config[=FLAGS]`."""
    return [arg for arg in args if arg != "--print_config" and not arg.startswith("--print_config=")]


def encoder_problem(config) -> str | None:
    """Why the parsed `config` (one subcommand's) names an encoder that would not be built (`EncoderConfig.validate`:
    an unregistered mixer, a negative dim, ...), or None."""
    from .config import EncoderConfig

    try:
        EncoderConfig(**config.model.encoder.as_dict()).validate()
    except ValueError as err:
        return str(err)
    return None


@contextlib.contextmanager
def parse_errors_raised(parsers):
    """jsonargparse's parse errors raised as `ArgumentError` (for the CLI to say in a line or two) instead of printed
    with the usage listing of every option."""
    for each in parsers:
        each.exit_on_error = False
    try:
        yield
    finally:
        for each in parsers:
            each.exit_on_error = True


def _not_quieted(record: logging.LogRecord) -> bool:
    return not record.getMessage().startswith(QUIET_LOGS)


def quiet() -> None:
    """Silence the warnings and tips in QUIET_WARNINGS / QUIET_LOGS."""
    for message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_not_quieted)


def without_checkpoints(callbacks: list) -> list:
    """`callbacks` less the `ModelCheckpoint`s, for a fit with `trainer.enable_checkpointing` false, which Lightning
    refuses beside one."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    return [callback for callback in callbacks if not isinstance(callback, ModelCheckpoint)]


def trainer_defaults(task: TaskSpec) -> dict:
    from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint

    from .tasks.epoch_means import EpochMeansAcrossResume
    from .tasks.epoch_summary import EpochSummary
    from .tasks.interrupt import StopOnSignal
    from .tasks.latest_checkpoint import LatestCheckpoint
    from .tasks.prediction_writer import JsonLinesPredictionWriter
    from .tasks.resume import ResumeMidEpoch
    from .tasks.schedule_budget import ScheduleBudget

    monitor, mode = task.monitor
    return {
        "default_root_dir": f"runs/{task.name}",
        "logger": {"class_path": "infomamba.tasks.run_dir.RunLogger",
                   "init_args": {"save_dir": "runs", "name": task.name}},
        "callbacks": [ModelCheckpoint(monitor=monitor, mode=mode, filename="best-{epoch}-{step}"),
                      LatestCheckpoint(), LearningRateMonitor(logging_interval="step"), EpochSummary(),
                      JsonLinesPredictionWriter(), ResumeMidEpoch(), EpochMeansAcrossResume(), StopOnSignal(),
                      ScheduleBudget()],
        "plugins": [{"class_path": "infomamba.tasks.checkpoint_io.AtomicCheckpointIO"}],
        "use_distributed_sampler": False,
        "precision": None,  # `default_precision`, once the accelerator is known
        "log_every_n_steps": 10,
        "max_epochs": task.max_epochs,
    }


def default_precision(accelerator) -> str:
    """The precision of a run that names none: bf16-mixed where its accelerator may be a CUDA GPU with bf16 ("auto",
    "gpu", "cuda"), else 32-true; `--trainer.accelerator=cpu` on a GPU machine runs in float32, as on any CPU."""
    import torch

    gpu = isinstance(accelerator, str) and accelerator.lower() in ("auto", "gpu", "cuda")
    return "bf16-mixed" if gpu and torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "32-true"


def resumed_run(config, subcommand: str) -> Path | None:
    """The run folder `fit --ckpt_path last` continues, named in a line (None for any other command)."""
    from .tasks.run_dir import LAST, newer_runs, resumable_run

    if config.ckpt_path in ("last", "best") and subcommand != "fit":
        raise SystemExit(f"{subcommand} --ckpt_path {config.ckpt_path}: give the checkpoint file, e.g. "
                         f"--ckpt_path runs/<task>/version_N/{LAST}")
    if subcommand != "fit" or config.ckpt_path != "last":
        return None
    if config.run_dir:
        run = Path(config.run_dir)
        if not (run / LAST).is_file():
            raise SystemExit(f"--ckpt_path last: nothing to resume in --run_dir {run} (no {run / LAST})")
        note(f"[infomamba] --ckpt_path last continues {run}")
        return run
    logger = folder_logger_args(config)
    run = resumable_run(Path(logger.save_dir) / (logger.name or ""))
    newer = newer_runs(run)
    note(f"[infomamba] --ckpt_path last continues {run}" + (
        f": the newer {', '.join(newer)} {'has' if len(newer) == 1 else 'have'} no {LAST} (stopped before a first "
        "checkpoint, or evaluations)" if newer else ""))
    return run


def refuse_changed_run(run: Path, saved: str, now: str) -> None:
    """End `fit --ckpt_path last` with one line when this command changes the continued run's model or data
    (`changed_settings`; `saved`, `now`: the run's config.yaml and this command's config, as YAML)."""
    import yaml

    from .tasks.run_dir import changed_settings

    changed = changed_settings(yaml.safe_load(saved), yaml.safe_load(now))
    if changed:
        raise SystemExit(f"--ckpt_path last continues {run}, whose model and data this command changes "
                         f"({shown_changes(changed)}): a resumed run keeps them; drop those options to continue it, "
                         "or leave out --ckpt_path last to start a new run")


def folder_logger_args(config, required: bool = True):
    """The logger's init_args when it keeps `<save_dir>/<name>/<version>` run folders (a CSVLogger or a
    TensorBoardLogger); otherwise None, or a one-line exit when `required`."""
    from jsonargparse import Namespace
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    logger = config.trainer.logger
    if isinstance(logger, Namespace):
        module, _, name = logger.class_path.rpartition(".")
        if issubclass(getattr(importlib.import_module(module), name), (CSVLogger, TensorBoardLogger)):
            return logger.init_args
    if required:
        raise SystemExit(f"--ckpt_path last and --run_dir use run folders, which --trainer.logger={logger} does "
                         "not keep: give --ckpt_path a checkpoint file, or use a CSVLogger / TensorBoardLogger")
    return None


class Claim(NamedTuple):
    """A run folder this command created, and the outermost folder it created for it (the run folder itself, or
    the first of its parents that did not exist: `runs/` on a first run)."""
    folder: Path
    top: Path


def place_run(config, resumed: Path | None, subcommand: str) -> Claim | None:
    """Point the logger (so the checkpoints and config.yaml too) at this run's folder: the resumed one (into whose
    metrics.csv a CSVLogger appends: `run_dir.appending`), `--run_dir`, or a newly claimed `version_N` (only rank 0
    claims; Lightning broadcasts its log_dir); none for a new `fast_dev_run`, which writes nothing. validate/test/
    predict with the config of a `--run_dir` run (a logger named "" whose version is the run's folder) claim their
    `version_N` inside that folder. Returns the `Claim` of the folder this call created (rank 0), or None."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from .tasks.run_dir import LAST, appending, claim_folder, claim_version, outermost_missing

    if resumed is None and config.trainer.fast_dev_run:  # Lightning swaps the logger for a dummy: no folder
        return None
    folder = resumed or (Path(config.run_dir) if config.run_dir else None)
    logger = folder_logger_args(config, required=folder is not None)
    if logger is None:
        return None
    claimed = None
    if folder is not None:
        # A resumed version_N keeps its number (the progress bar's v_num; the folder is save_dir/version_N either way)
        logger.save_dir, logger.name = str(folder.parent), ""
        logger.version = folder.name if config.run_dir else int(folder.name.removeprefix("version_"))
        if resumed is None and rank_zero_only.rank == 0:
            claimed = Claim(folder, outermost_missing(folder) or folder)  # claim_folder refuses an existing one
            claim_folder(folder)
    else:
        if subcommand != "fit" and not logger.name and isinstance(logger.version, str):
            logger.name = logger.version
        root = Path(logger.save_dir) / (logger.name or "")
        if rank_zero_only.rank == 0:
            top = outermost_missing(root)
            logger.version = claim_version(root)
            run = root / f"version_{logger.version}"
            claimed = Claim(run, top or run)
        else:
            logger.version = None
    if resumed is not None:
        config.ckpt_path = str(resumed / LAST)
        config.trainer.logger.class_path = appending(config.trainer.logger.class_path)
    config.run_dir = None
    return claimed


def checkpoint_contents(ckpt_path: str, keys, data_key: str) -> dict:
    """What an evaluation takes from its checkpoint file before anything is built (read through a memory map: no
    weights are loaded): "hparams", those of the model hyperparameters `keys` (the values a task links from its
    data) that it keeps, "data", the data module's state (under Lightning's key, the data module's class name;
    {} when it kept none), and "data_hparams", the data module's hyperparameters ({} when it kept none)."""
    checkpoint = read_checkpoint(ckpt_path)
    hparams = checkpoint.get("hyper_parameters", {})
    return {"hparams": {key: hparams[key] for key in keys if key in hparams}, "data": checkpoint.get(data_key) or {},
            "data_hparams": checkpoint.get("datamodule_hyper_parameters") or {}}


def trained_data(data, trained: dict, keys: tuple[str, ...], given: set[str]) -> None:
    """Set the data options `keys` (a task's `trained_data`) that this command does not give (`given`) to the
    checkpoint's (`trained`, its data module's hyperparameters), saying which: a checkpoint moved away from its
    run folder, whose config.yaml would have given them, had been evaluated at the defaults (text cut at 512 tokens
    where it was trained at 1,024)."""
    for key in keys:
        if f"data.{key}" not in given and key in trained and data.get(key) != trained[key]:
            note(f"[infomamba] data.{key}={trained[key]!r} as the checkpoint was trained (not {data.get(key)!r}; "
                 f"give --data.{key} to change it)")
            data[key] = trained[key]


def linked_value(source: str, target: str, checkpoint: dict):
    """The value a task links from its data module (`source`) to its model (`target`). In an evaluation,
    `checkpoint` holds what its checkpoint keeps (`checkpoint_contents`): the value is the checkpoint's
    hyperparameter where it keeps one (the sizes the weights were trained with), else the data module's attribute
    read once the data module has taken the checkpoint's data state (the tokenizer or vocabulary the weights were
    trained with; `load_state_dict` is idempotent). So a predict data module need not open the training data."""
    def value(datamodule):
        hparams, state = checkpoint.get("hparams", {}), checkpoint.get("data")
        if target in hparams:
            return hparams[target]
        if state:
            datamodule.load_state_dict(state)
        return getattr(datamodule, source)
    return value


# What a run writes before it has done anything: the config it was given, restated.
RESTATED = ("config.yaml", "hparams.yaml")


def remove_if_empty(folder: Path | None) -> None:
    """Take back a folder that a failed command created and wrote nothing of its own into, only its config restated
    (`RESTATED`), its lock and folders of the same kind (the parents a first run creates, `runs/<task>/`): so that
    the same command, once mended, can claim it again (a `--run_dir` run that failed setting up its model had
    blocked its own re-run, and `--ckpt_path last` found nothing to continue), and a refused first run leaves no
    empty `runs/`."""
    from .tasks.run_dir import LOCK

    if folder is None or not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            remove_if_empty(entry)
    entries = list(folder.iterdir())
    if all(entry.name in (*RESTATED, LOCK) and entry.is_file() for entry in entries):
        for entry in entries:
            entry.unlink()
        folder.rmdir()


def checked_setup(setup, label: str):
    """The data module's `setup`, with what it rejects of the data (ValueError, FileNotFoundError: a missing split,
    no readable input, a malformed file) ending the command with one line instead of a traceback through Lightning's
    loops."""
    def setup_or_exit(stage: str):
        try:
            return setup(stage)
        except (ValueError, FileNotFoundError) as err:
            raise SystemExit(f"{label}: invalid data: {err}") from None
    return setup_or_exit


def load_task(name: str) -> tuple[TaskSpec, type, type]:
    """The registered task and its two classes; a task whose dependencies are missing exits with one line."""
    spec = get_task(name)
    try:
        module_cls, data_cls = spec.load()
    except (ImportError, AttributeError) as err:
        raise SystemExit(f"--task {name} is not available: {err}") from err
    return spec, module_cls, data_cls


def read_limits_as_lightning_does(parser) -> None:
    """Parse the Trainer's limit_*_batches as its signature types them, int before float: Lightning reads an int
    as a number of batches and a float as a fraction of the epoch, and jsonargparse, which tries the union's
    float first, made a written 1 (one batch) into 1.0 (the whole epoch). `int | float | None`, not
    `Optional[Union[int, float]]`: typing caches unions regardless of order, so once anything (torchaudio does) has
    built `Optional[Union[float, int]]`, the latter is that, float first."""
    for action in parser._actions:
        if action.dest in LIMITS and hasattr(action, "_typehint"):
            action._typehint = int | float | None


def whole_split(trainer, command: str, given: set[str]) -> None:
    """Lift the limit on an evaluation's split (`limit_val_batches` for validate, ...) that it inherits from the
    run's config.yaml, saying so: a checkpoint is scored on the whole split unless this command limits it (the
    fit's limit, e.g. 3 validation batches, had scored a few batches without a word)."""
    key = {"validate": "limit_val_batches", "test": "limit_test_batches", "predict": "limit_predict_batches"}[command]
    inherited = trainer.get(key)
    if f"trainer.{key}" in given or inherited is None or (isinstance(inherited, float) and inherited == 1.0):
        return  # (an int 1 is one batch)
    trainer[key] = None
    note(f"[infomamba] {command} covers the whole split: the run's config.yaml had trainer.{key}={inherited!r}, "
         "which this command does not give")


def keep_given(before, after, command: str, given: set[str], weight_keys: tuple[str, ...]):
    """`after` (the config once Lightning put a --ckpt_path file's hyperparameters over the model options) with the
    model options this command gives itself (`given`, with their values in `before`) put back, and a note naming
    them. Refused in one line: for `fit` any of them (it continues that checkpoint's training: weights, optimizer
    and schedule), for an evaluation those of the weights (`weight_keys`: key prefixes such as "model.encoder")."""
    from .tasks.run_dir import RESUMABLE_CHANGES

    changed = [(key, after.get(f"{command}.{key}"), before.get(f"{command}.{key}")) for key in sorted(given)
               if before.get(f"{command}.{key}") != after.get(f"{command}.{key}")]
    fixed = [c for c in changed if c[0] not in RESUMABLE_CHANGES and (command == "fit" or c[0].startswith(weight_keys))]
    if fixed:
        why = ("fit --ckpt_path FILE continues that checkpoint's training (weights, optimizer, schedule)"
               if command == "fit" else "the weights were trained with them")
        raise SystemExit(f"--ckpt_path: this command changes the checkpoint's model options "
                         f"({shown_changes(fixed)}): {why}; drop those options")
    for key, _, value in changed:
        after[f"{command}.{key}"] = value
    if changed:
        shown = ", ".join(f"{key} {value!r} (the checkpoint's: {saved!r})" for key, saved, value in changed)
        note(f"[infomamba] over the checkpoint's model options: {shown}")
    return after


def leave_process_group() -> None:
    """Wait for every rank, then take a gloo process group down before the interpreter exits.

    Lightning destroys only NCCL groups at exit; a gloo group left to the interpreter's teardown can abort
    the process (`terminate called without an active exception`, exit -6) when the ranks finish unevenly,
    e.g. `predict` with an uneven split of the inputs. Called only after a run that ended normally (after an
    error the other ranks may never come); a rank that does not arrive within 5 minutes is named in the error
    (`monitored_barrier`) instead of hanging the others."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "gloo":
        dist.monitored_barrier(timeout=datetime.timedelta(minutes=5))
        dist.destroy_process_group()


def spawned_ranks(strategy) -> str | None:
    """Why the trainer's `strategy` cannot run this command, or None. One that starts its processes with
    multiprocessing's spawn or forkserver (ddp_spawn) pickles the model and the data module into each of them, and
    the links from the data module to the model (`linked_value`) are closures, which do not pickle: it had ended with
    multiprocessing's traceback ("Can't pickle local object"). ddp re-runs the command per rank; ddp_fork forks."""
    method = getattr(getattr(strategy, "launcher", None), "_start_method", None)
    if method not in ("spawn", "forkserver"):
        return None
    return (f"trainer.strategy starts its processes with {method}{' (ddp_spawn)' if method == 'spawn' else ''}, which "
            "cannot carry this command's model and data to them: give --trainer.strategy=ddp (each rank runs the "
            "command again) or ddp_fork")


def signal_exit_status(code: int | None, rank: int) -> int:
    """The exit status of a fit stopped by a signal: 128 + the signal's number on rank 0, 0 on the other ranks, whose
    part ended cleanly with last.ckpt written. A rank that exits non-zero first is a failed rank to Lightning's DDP
    launcher and to torchrun, which then kill rank 0 while it is still exiting (reproduced: a rank 0 slower than the
    launcher's 5 s check ended with SIGKILL's -9)."""
    return (code or 128 + signal.SIGTERM) if rank == 0 else 0


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    read_checkpoint.cache_clear()  # once per command: a file read by an earlier one may have been written since
    guard_pipes()
    one_line_warnings()
    try:
        plugins = load_plugins()  # the user's mixers and tasks, registered before any is looked up by name
    except PluginError as err:
        raise SystemExit(f"infomamba: {err}") from None
    if argv and argv[0] in APPS:
        return importlib.import_module(f"infomamba.{argv[0]}").main(argv[1:])
    if argv in ([], ["--help"], ["-h"]):
        print(overview())
        return None
    name, rest = pop_task(argv)
    check_command(rest)
    rest = shorthands(rest)
    task, module_cls, data_cls = load_task(name)
    label = f"infomamba {rest[0]} --task {name}" if rest and not rest[0].startswith("-") else f"infomamba --task {name}"
    check_checkpoint_task(ckpt_path_arg(rest), task, label)
    from lightning.pytorch.cli import LightningCLI
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

    from .tasks.base import RunRefused
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from .tasks.epoch_summary import logged_into
    from .tasks.run_dir import FOLDER_SETTINGS, LAST, anchored, hold, release

    args = run_config_for(rest)
    claimed: list[Claim | None] = []
    checkpoint: dict = {}

    class TaskCLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            read_limits_as_lightning_does(parser)
            for source, target in task.links.items():
                parser.link_arguments("data", f"model.{target}", apply_on="instantiate",
                                      compute_fn=linked_value(source, target, checkpoint))
            parser.add_argument("--run_dir", type=str | None, default=None, help=RUN_DIR_HELP)

        def _add_subcommands(self, parser, **kwargs):
            super()._add_subcommands(parser, **kwargs)
            for command, subparser in self._subcommand_parsers.items():  # usage as typed, not "... [options] fit"
                subparser.prog = f"infomamba {command} --task {name}"

        def parse_arguments(self, parser, args):
            """Parse errors as a few lines naming the file and key at fault, without the usage listing."""
            from argparse import ArgumentError

            files = config_files(args)
            for problem in filter(None, map(yaml_problem, files)):
                raise SystemExit(f"infomamba --task {name}: {problem}")
            checked = without_print_config(args)
            if checked != args:  # jsonargparse prints before any class is built: the encoder is checked first
                self.parse_arguments(parser, checked)
                command = self.config.get("subcommand")
                problem = command and encoder_problem(self.config[command])
                if problem:
                    raise SystemExit(f"{label}: invalid configuration: {problem}")
            try:
                with parse_errors_raised([parser, *self._subcommand_parsers.values()]):
                    super().parse_arguments(parser, args)
            except ArgumentError as err:
                message = str(err).removeprefix("argument None: ").strip()
                command = args[0] if args and args[0] in self._subcommand_parsers else None
                accepted = [action.dest for action in self._subcommand_parsers[command]._actions] if command else []
                explained = parse_error_message(message, accepted, files)
                raise SystemExit(f"{label}: {explained or message}\n"
                                 f"(every option: infomamba {command or 'fit'} --task {name} --help)") from None

        def _parse_ckpt_path(self):
            """Lightning puts a --ckpt_path file's hyperparameters over every parsed model option; those this
            command gives itself win again, or are refused where the checkpoint fixes them (`keep_given`)."""
            from argparse import ArgumentError

            before = self.config.clone()
            try:
                with parse_errors_raised([self.parser, *self._subcommand_parsers.values()]):
                    super()._parse_ckpt_path()
            except ArgumentError as err:
                ckpt = before[before.subcommand].ckpt_path
                raise SystemExit(f"--ckpt_path {ckpt}: its model hyperparameters are not this version's options "
                                 f"(a checkpoint of another version of infomamba?): {err}") from None
            command = self.config.get("subcommand")
            if command:
                weights = ("model.encoder", *(f"model.{target}" for target in task.links.values()))
                self.config = keep_given(before, self.config, command, given_keys(rest, "model"), weights)

        def before_instantiate_classes(self):
            config = self.config[self.subcommand]
            if self.subcommand in EVALUATIONS and config.ckpt_path is None:
                raise SystemExit(f"{label} needs --ckpt_path (a trained checkpoint, e.g. "
                                 f"runs/{name}/version_N/checkpoints/last.ckpt): without one the model is untrained")
            resumed = resumed_run(config, self.subcommand)
            problem = resumed and checkpoint_problem(resumed / LAST, task.name, task.module)
            if problem:
                raise SystemExit(f"--ckpt_path last continues {resumed}, whose {LAST} {problem}")
            if config.trainer.enable_checkpointing is False:
                self.trainer_defaults["callbacks"] = without_checkpoints(self.trainer_defaults["callbacks"])
            if resumed is None and config.ckpt_path is not None and not Path(config.ckpt_path).is_file():
                raise SystemExit(f"{label}: --ckpt_path {config.ckpt_path} is not a file (give a checkpoint, e.g. "
                                 f"runs/{name}/version_N/checkpoints/last.ckpt)")
            if self.subcommand in EVALUATIONS:
                checkpoint.update(checkpoint_contents(config.ckpt_path, task.links.values(), data_cls.__qualname__))
                trained_data(config.data, checkpoint["data_hparams"], task.trained_data, given_keys(rest, "data"))
                if args is not rest:  # the run's config.yaml was read
                    whole_split(config.trainer, self.subcommand, given_keys(rest, "trainer"))
            if resumed and (resumed / "config.yaml").is_file():
                extended = with_config(args, resumed / "config.yaml")
                if extended is not args:
                    self.parse_arguments(self.parser, extended)
                refuse_changed_run(resumed, (resumed / "config.yaml").read_text(encoding="utf-8"),
                                   self._subcommand_parsers["fit"].dump(self.config["fit"]))
            config = self.config[self.subcommand]  # (parsed again for a resumed run)
            if config.trainer.precision is None:  # set here, so the run's config.yaml records the one it ran at
                config.trainer.precision = default_precision(config.trainer.accelerator)
            for key in FOLDER_SETTINGS:
                if key in config:
                    config[key] = anchored(config[key])
            claimed.append(place_run(config, resumed, self.subcommand))
            if self.subcommand == "fit" and (resumed or claimed[-1]) and rank_zero_only.rank == 0:
                hold(resumed or claimed[-1].folder)

        def instantiate_classes(self):
            try:
                super().instantiate_classes()
            except (ValueError, FileNotFoundError, ImportError, MisconfigurationException) as err:  # rejected: one line
                cause = err.__cause__  # what a link's compute_fn raised, wrapped by jsonargparse; a constructor's
                # own error arrives unwrapped and is kept, not what caused it (a UnicodeDecodeError naming no file)
                if isinstance(cause, (ValueError, FileNotFoundError, ImportError)) and \
                        str(err).startswith("Call to compute_fn of link"):
                    err = cause
                what = "a missing package" if isinstance(err, ImportError) else "invalid configuration"
                raise SystemExit(f"{label}: {what}: {err}") from None
            if checkpoint.get("data"):  # before any hook reads data: an evaluation encodes as the weights were trained
                self.datamodule.load_state_dict(checkpoint["data"])
            self.datamodule.setup = checked_setup(self.datamodule.setup, label)

        def after_validate(self):
            logged_into(self.trainer, "validate")

        def after_test(self):
            logged_into(self.trainer, "test")

        def instantiate_trainer(self, **kwargs):
            from .tasks.resume import resume_where_saved

            try:
                trainer = super().instantiate_trainer(**kwargs)
            except TypeError as err:  # Lightning's check of a setting's type (devices=two): instantiate_classes's line
                raise ValueError(f"trainer: {err}") from None
            resume_where_saved(trainer)  # a checkpoint written at an epoch's end resumes where that epoch stood
            problem = spawned_ranks(trainer.strategy)
            if problem:
                raise ValueError(problem)
            if not trainer.loggers:  # --trainer.logger=false: its check had stopped the fit with a traceback
                trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, LearningRateMonitor)]
            if trainer.fast_dev_run:  # Lightning writes no checkpoint then, but for save_last's at the end of fit
                for checkpoint in trainer.checkpoint_callbacks:
                    checkpoint.save_last = False
            return trainer

    # sys.argv stays whole: Lightning's DDP launcher re-runs it (with --task) in every child process.
    quiet()
    for line in filter(None, [f"[infomamba] plugins: {', '.join(plugins)}" if plugins else None,
                              optimizer_override_note(rest)]):
        note(line)
    interrupted = Interrupts()
    try:
        TaskCLI(module_cls, data_cls, args=args,
                trainer_defaults=trainer_defaults(task),
                save_config_kwargs={"overwrite": True}, seed_everything_default=0,
                parser_kwargs={"prog": f"infomamba --task {name}", "allow_abbrev": False})
    except SIGTERMException as stop:  # Lightning raises it bare (exit status 0) when it stops on SIGTERM
        raise SystemExit(signal_exit_status(stop.code, rank_zero_only.rank)) from None
    except BaseException as err:
        for claim in filter(None, claimed):
            remove_if_empty(claim.top)
        if isinstance(err, RunRefused):
            raise SystemExit(f"{label}: {err}") from None
        if isinstance(err, SystemExit) and refusal_without_label(err):
            raise SystemExit(f"{label}: {err.code}") from None
        if interrupted and isinstance(err, SystemExit) and err.code == 1:  # Lightning's exit after Ctrl-C
            err = KeyboardInterrupt()
        stopped = stopped_outside_training(err, label, claimed, rest[0] if rest else None)
        if stopped:
            raise stopped from None
        raise
    finally:
        interrupted.restore()
        release()
    leave_process_group()


def start_workers_from_a_fork_server() -> None:
    """Loader workers of this process start from a fork server (a process of one thread that imported torch once), not
    by forking the training process: a fork copies the locks that other threads hold at that moment (under DDP:
    gloo's, Lightning's watcher of the other ranks) and a worker that then waits on one never starts. Seen as a DDP
    fit that hung, a worker stuck in Python's after-fork handler, its rank waiting for the batch and the other rank
    in the gradient all-reduce. Set by the command only (a program that imports infomamba keeps its start method: a
    fork server re-imports the program's main module, which must then guard its code); where there is no fork server
    (Windows), the platform's default."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        multiprocessing.set_start_method("forkserver", force=True)
        multiprocessing.set_forkserver_preload(["__main__", "infomamba.tasks.sampling"])  # (and torch)


def run() -> None:
    """The `infomamba` command and `python -m infomamba.cli`."""
    start_workers_from_a_fork_server()
    try:
        main()
    except KeyboardInterrupt:  # one that `main` left, as while modules import: one line and the shell's 130
        say("infomamba: stopped by SIGINT", file=sys.stderr)
        raise SystemExit(128 + signal.SIGINT) from None


if __name__ == "__main__":
    run()
