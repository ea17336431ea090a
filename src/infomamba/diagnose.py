"""`infomamba diagnose`: the paper's consistency-boundary diagnostics on a trained checkpoint.

    infomamba diagnose --task text --ckpt_path runs/text/version_0/checkpoints/last.ckpt
    infomamba diagnose --task image --ckpt_path CKPT --root data/fashion_mnist --batches 16 --horizon 24
    infomamba diagnose --task text --ckpt_path ATTN.ckpt --other_ckpt MAMBA.ckpt     # + §5.5 agreement

For every softmax-attention layer (the `attention` mixer, MambaVision's attention layers): the causal
kernels w_t(ℓ) over a horizon of K lags on real inputs, ε_exp for m ∈ --orders exponentials (§3.2; the
fit: `infomamba.diagnostics.exponential_fit`) per layer and head, and each head's diagonal mass (§5.5).
For every selective SSM: the spectral radius of exp(dt A) over the data (H2). With --other_ckpt: the
fractions of the samples both models get right, both wrong, or disagree on (§5.5).

The model loads from its checkpoint alone (`<TaskModule>.load_from_checkpoint`); the data come from the
task's data module built from the `data:` section of the run's config.yaml (found next to the checkpoint,
in its folder or up to three folders above, as `infomamba validate` finds it; or --config FILE).
`--root PATH` replaces data.root and `--data.KEY=VALUE` any other data option (YAML value). The kernel
diagnostics read the first --batches batches of --split (default val); agreement reads the whole
--agreement_split (default test; val when the data module has no test split), each model with the data
module of its own run, aligned by sample id where the batches carry one (text: index; speech: utt_ids).
--agreement_batches N limits it to the samples of the first N batches of the checkpoint's run, which the
other model reads too, whatever its run's batch size.

"Right" is the predicted class for text and images, and the whole transcript for speech (so the
reported accuracy of an ASR model is its exact-match rate). A checkpoint with neither attention nor SSM
layers is refused with one line, unless --other_ckpt asks for the agreement alone.

A data module with several splits of a kind (speech: test-synth and test-asterisk) is read on its first one,
named in the report; `--data.test_splits=[NAME]` (or val_splits) picks another. Each pass over the data says
what it reads, and every PROGRESS_EVERY seconds how far it got.

The report (diagnostics.json, diagnostics.md and PNG plots, `infomamba.diagnostics.report`) goes to
--out, by default `<run>/diagnostics/<checkpoint name>/` (<run>: the folder of the checkpoint's config.yaml, or
the folder above its checkpoints/), never into the data folder of either run; the files replace those of an
earlier report whole (each written aside, then renamed). A checkpoint that is missing, no checkpoint, or of
another task's model, a malformed option, and Ctrl-C (exit 130, nothing written) end the command with one line.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import yaml

from .arguments import positive
from .cli import checkpoint_problem, saved_config
from .diagnostics.agreement import agreement
from .diagnostics.attention_kernels import AttentionRecorder
from .diagnostics.exponential_fit import DEFAULT_ORDERS, check_orders
from .diagnostics.report import summarize_attention, write_report
from .diagnostics.ssm_spectrum import SSMSpectrumRecorder

METHOD = ("normalised least-squares residual ||w - ŵ||² / ||w||² per query, averaged over queries; m-term "
          "mixture Σ β_i λ_i^ℓ with poles from the matrix pencil (|λ| <= 1) and β by least squares; "
          "the best over orders <= m")
PROGRESS_EVERY = 30.0  # seconds between the progress lines of a pass over the data


# --- the three built-in tasks: run a batch -> (predictions, labels, sample ids or None) ------------------

def _text(model, batch):
    logits, _ = model(batch["input_ids"], batch["padding_mask"])
    ids = batch["index"].tolist() if "index" in batch else None
    return logits.argmax(-1).tolist(), batch["labels"].tolist(), ids


def _image(model, batch):
    logits, _ = model(batch["images"])
    return logits.argmax(-1).tolist(), batch["labels"].tolist(), None


def _asr(model, batch):
    log_probs, lengths, _ = model(batch["features"], batch["feature_lengths"])
    return model.decode(log_probs, lengths), list(batch["transcripts"]), list(batch.get("utt_ids") or []) or None


RUNNERS: dict[str, tuple[str, Callable]] = {"text": ("input_ids", _text), "image": ("images", _image),
                                            "asr": ("features", _asr)}


# --- loading ------------------------------------------------------------------------------------------------

def run_folder(ckpt: Path) -> Path:
    """The checkpoint's run: the folder of its config.yaml, else the folder above its checkpoints/ (or its own)."""
    config = saved_config(ckpt)
    if config is not None:
        return config.parent
    folder = ckpt.resolve().parent
    return folder.parent if folder.name == "checkpoints" else folder


def run_config(ckpt: Path, config: str | None) -> Path:
    """The config.yaml of the checkpoint's run (or --config)."""
    if config:
        return Path(config)
    found = saved_config(ckpt)
    if found is not None:
        return found
    raise SystemExit(f"diagnose: no config.yaml next to {ckpt} or up to three folders above it; "
                     "give the run's config with --config FILE")


def data_options(config_path: Path, overrides: dict) -> dict:
    """The data module's init arguments of a run config, with the command line's overrides."""
    config = yaml.safe_load(config_path.read_text()) or {}
    data = config.get("data") or {}
    if "init_args" in data:  # a data module given by class_path
        data = data.get("init_args") or {}
    return {**data, **overrides}


def parse_overrides(extra: list[str], root: str | None) -> dict:
    """`--data.KEY=VALUE` / `--data.KEY VALUE` (YAML values) and --root -> {KEY: value}."""
    out, i = {}, 0
    while i < len(extra):
        arg = extra[i]
        if not arg.startswith("--data."):
            raise SystemExit(f"diagnose: unknown argument {arg!r} (data options are --data.KEY=VALUE)")
        key, eq, value = arg[len("--data."):].partition("=")
        if not eq:
            if i + 1 >= len(extra):
                raise SystemExit(f"diagnose: {arg} needs a value")
            value, i = extra[i + 1], i + 1
        out[key] = yaml.safe_load(value)
        i += 1
    if root is not None:
        out["root"] = root
    return out


def load_task(name: str):
    from .tasks.registry import get_task

    try:
        spec = get_task(name)
        return spec.load()
    except KeyError as err:
        raise SystemExit(f"diagnose: {err.args[0]}") from None
    except (ImportError, AttributeError) as err:
        raise SystemExit(f"diagnose: --task {name} is not available: {err}") from err


def check_checkpoint(ckpt: Path, option: str, task: str, module_cls) -> None:
    """A missing file, a folder, a file torch cannot load, or a checkpoint of another task's model: one line."""
    if not ckpt.is_file():
        what = "a folder; give a checkpoint file in it" if ckpt.is_dir() else "no such file"
        raise SystemExit(f"diagnose: {option} {ckpt}: {what}")
    problem = checkpoint_problem(ckpt, task, module_cls)
    if problem:
        raise SystemExit(f"diagnose: {option} {ckpt} {problem}")


def load_model(module_cls, ckpt: Path, device, option: str = "--ckpt_path"):
    try:
        model = module_cls.load_from_checkpoint(str(ckpt), map_location="cpu")
    except (RuntimeError, KeyError, TypeError) as err:  # another model's, saved before checkpoints named their class
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SystemExit(f"diagnose: {option} {ckpt} does not load as {module_cls.__name__}: {first}") from None
    return model.eval().to(device)


def build_data(data_cls, config_path: Path, overrides: dict):
    options = data_options(config_path, overrides)
    try:
        return data_cls(**options)
    except TypeError as err:
        raise SystemExit(f"diagnose: cannot build {data_cls.__name__} from {config_path}: {err}") from err


def loader_for(datamodule, split: str, fallback: bool = False, name: str | None = None):
    """(loader, split, name) of `split` ("val" / "test"); with fallback, val when there is no test split. Of a
    data module that names its loaders of that split (speech), the one named `name`, else the first (said on stdout
    where there are several); the name is None where the loaders have no names."""
    datamodule.prepare_data()
    stage = {"val": "validate", "test": "test"}[split]
    try:
        datamodule.setup(stage)
        loader = datamodule.val_dataloader() if split == "val" else datamodule.test_dataloader()
    except (RuntimeError, ValueError, FileNotFoundError) as err:
        if fallback and split == "test":
            return loader_for(datamodule, "val")
        raise SystemExit(f"diagnose: no {split} data: {err}") from err
    names = list(getattr(datamodule, f"{split}_split_names", None) or [])
    if isinstance(loader, dict):
        names, loader = list(loader), list(loader.values())
    loaders = list(loader) if isinstance(loader, (list, tuple)) else [loader]
    if not loaders or loaders[0] is None:
        if fallback and split == "test":
            return loader_for(datamodule, "val")
        raise SystemExit(f"diagnose: the data module has no {split} split")
    if len(names) != len(loaders):
        return loaders[0], split, None
    if name is None:
        name = names[0]
        if len(names) > 1:
            print(f"[diagnose] the {split} data holds {len(names)} splits ({', '.join(names)}): reading {name}; "
                  f"another with --data.{split}_splits=[NAME]", flush=True)
    if name not in names:
        raise SystemExit(f"diagnose: the other run's {split} data has no split {name} (it has {', '.join(names)})")
    return loaders[names.index(name)], split, name


def split_label(split: str, name: str | None) -> str:
    """How the report names a split: "val", or "test (test-synth)" for one of several."""
    return split if name is None else f"{split} ({name})"


def batches(datamodule, loader, device, input_key: str, limit: int | None, what: str, counted: bool = True):
    """The loader's batches on `device`, through the data module's transfer hooks; batches without input
    (every sample unreadable) are skipped. Says `what` it reads up front, with how many batches where `counted`
    (not for a pass its caller stops at a number of samples: the split's count had read as the batches read), and
    every PROGRESS_EVERY seconds how far it got."""
    from lightning.fabric.utilities.apply_func import move_data_to_device

    try:
        total = len(loader) if limit is None else min(limit, len(loader))
    except TypeError:  # an iterable loader
        total = limit
    total = total if counted else None
    of = "" if total is None else f" of {total}"
    print(f"[diagnose] {what}" + ("" if total is None else
                                 f" ({total} batch{'' if total == 1 else 'es'}{'' if limit else ' in the split'})"),
          flush=True)
    seen, start = 0, time.perf_counter()
    shown = start
    for batch in loader:
        if limit is not None and seen >= limit:
            return
        batch = datamodule.on_before_batch_transfer(batch, 0)
        if batch is None:  # the data module dropped the whole batch
            continue
        batch = move_data_to_device(batch, device)
        batch = datamodule.on_after_batch_transfer(batch, 0)
        if input_key not in batch:
            continue
        seen += 1
        yield batch
        if time.perf_counter() - shown >= PROGRESS_EVERY:
            shown = time.perf_counter()
            print(f"[diagnose] {what}: batch {seen}{of}, {shown - start:.0f}s", flush=True)


def predictions(task: str, model, datamodule, loader, device, what: str, limit: int | None = None,
                samples: int | None = None):
    """(predictions, labels, sample ids or None) over the loader: its first `limit` batches, or (for another
    run's loader, whose batch size may differ) its first `samples` samples, the last batch cut to them."""
    input_key, run = RUNNERS[task]
    preds, labels, ids = [], [], []
    with torch.no_grad():
        for batch in batches(datamodule, loader, device, input_key, limit, what, counted=samples is None):
            p, y, i = run(model, batch)
            preds += p
            labels += y
            ids = None if i is None or ids is None else ids + i
            if samples is not None and len(labels) >= samples:
                break
    if samples is not None:
        preds, labels, ids = preds[:samples], labels[:samples], None if ids is None else ids[:samples]
    return preds, labels, ids


def aligned(a: tuple, b: tuple) -> tuple[list, list, list]:
    """Both models' predictions on the same samples (by id where both have ids), with the labels."""
    (pa, ya, ia), (pb, yb, ib) = a, b
    if ia is not None and ib is not None:
        by_id = {i: (p, y) for i, p, y in zip(ib, pb, yb)}
        common = [k for k, i in enumerate(ia) if i in by_id]
        if len(common) != len(ia) or len(by_id) != len(ib):
            raise SystemExit(f"diagnose: the two runs' data hold different samples ({len(ia)} and {len(ib)}, "
                             f"{len(common)} in common)")
        pb = [by_id[ia[k]][0] for k in common]
        yb = [by_id[ia[k]][1] for k in common]
    if len(pa) != len(pb) or ya != yb:
        raise SystemExit("diagnose: the two checkpoints' data differ (other samples or labels); give both runs "
                         "the same data (--data.* applies to both)")
    return pa, pb, ya


# --- the command ----------------------------------------------------------------------------------------------

def order_list(text: str) -> list[int]:
    """An argparse type: comma-separated whole numbers (1,2,4,8)."""
    try:
        return [int(m) for m in text.split(",") if m.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give comma-separated whole numbers, e.g. 1,2,4,8") from None


def device_of(name: str) -> torch.device:
    """--device as a torch device: "auto" is cuda when there is one; a device this machine lacks is one line."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SystemExit(f"diagnose: --device {name}: not a device; give auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise SystemExit(f"diagnose: --device {name}: this machine has {torch.cuda.device_count()} CUDA devices; "
                         "give --device cpu")
    return device


def check_out(out: Path, data: list[dict]) -> None:
    """--out must be a folder (or new) and lie outside every data root of the runs read."""
    if out.exists() and not out.is_dir():
        raise SystemExit(f"diagnose: --out {out} is a file; give a folder")
    target = out.resolve()
    for options in data:
        root = options.get("root")
        if isinstance(root, str) and Path(root).is_dir():
            root = Path(root).resolve()
            if target == root or root in target.parents:
                raise SystemExit(f"diagnose: --out {out} lies in the data folder {root}; a report never goes into "
                                 "its data: give a folder outside it")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="infomamba diagnose", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="text", help="the task the checkpoint was trained on (default text)")
    p.add_argument("--ckpt_path", required=True, help="the trained checkpoint")
    p.add_argument("--config", default=None, help="the run's config.yaml (default: found next to the checkpoint)")
    p.add_argument("--root", default=None, help="replaces data.root of the run's config")
    p.add_argument("--split", choices=["val", "test"], default="val", help="data of the kernel diagnostics")
    p.add_argument("--batches", type=positive, default=8, help="batches of --split for the kernel diagnostics")
    p.add_argument("--horizon", type=int, default=32, help="K, lags of each attention kernel")
    p.add_argument("--orders", type=order_list, default=list(DEFAULT_ORDERS),
                   help="numbers of exponentials m, comma-separated")
    p.add_argument("--max_queries", type=positive, default=64, help="query rows per sequence (evenly spaced)")
    p.add_argument("--max_kernels", type=positive, default=4096,
                   help="query rows fitted per layer (a random subsample), each one kernel per head")
    p.add_argument("--future", action="store_true",
                   help="non-causal layers: also fit the anti-causal half (keys t + ℓ)")
    p.add_argument("--other_ckpt", default=None, help="a second checkpoint of the same task: agreement (§5.5)")
    p.add_argument("--other_config", default=None, help="its config.yaml (default: found next to it)")
    p.add_argument("--agreement_split", choices=["val", "test"], default="test")
    p.add_argument("--agreement_batches", type=int, default=None,
                   help="limit the agreement to the samples of N batches of --ckpt_path's data (the other model "
                   "reads the same samples, whatever its run's batch size)")
    p.add_argument("--device", default="auto", help="auto (cuda when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--out", default=None, help="report folder (default <run>/diagnostics/<checkpoint name>)")
    return p


def main(argv: list[str] | None = None) -> None:
    """`infomamba diagnose [options]` (see the module docstring); returns None, as a console script must."""
    try:
        diagnose(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        print("diagnose: interrupted; no report written", file=sys.stderr, flush=True)
        raise SystemExit(130) from None


def diagnose(argv: list[str]) -> dict:
    """Run the diagnostics; returns the report (also written to --out) and prints where it went."""
    args, extra = parser().parse_known_args(argv)
    if args.task not in RUNNERS:
        raise SystemExit(f"diagnose: --task {args.task}: diagnose knows the tasks {', '.join(RUNNERS)}")
    ckpt = Path(args.ckpt_path)
    try:
        orders = list(check_orders(args.orders, args.horizon))
    except ValueError as err:
        raise SystemExit(f"diagnose: {err}") from None
    if args.agreement_batches is not None and args.agreement_batches < 1:
        raise SystemExit(f"diagnose: --agreement_batches {args.agreement_batches}: give at least 1 batch")
    overrides = parse_overrides(extra, args.root)

    device = device_of(args.device)
    module_cls, data_cls = load_task(args.task)
    check_checkpoint(ckpt, "--ckpt_path", args.task, module_cls)
    if args.other_ckpt is not None:
        check_checkpoint(Path(args.other_ckpt), "--other_ckpt", args.task, module_cls)
    model = load_model(module_cls, ckpt, device)
    directions = ("past", "future") if args.future else ("past",)
    attention = AttentionRecorder(model, args.horizon, args.max_queries, directions)
    spectrum = SSMSpectrumRecorder(model)
    if not attention.layers and not spectrum.layers and args.other_ckpt is None:
        mixer = getattr(getattr(model, "encoder_config", None), "mixer", "?")
        raise SystemExit(f"diagnose: {ckpt} (mixer {mixer}) has no attention or SSM layer to diagnose")

    start = time.perf_counter()
    config_path = run_config(ckpt, args.config)
    other_config = None if args.other_ckpt is None else run_config(Path(args.other_ckpt), args.other_config)
    out = Path(args.out) if args.out else run_folder(ckpt) / "diagnostics" / ckpt.stem
    check_out(out, [data_options(path, overrides) for path in (config_path, other_config) if path is not None])
    datamodule = build_data(data_cls, config_path, overrides)
    report = {"task": args.task, "ckpt_path": str(ckpt), "config": str(config_path), "method": METHOD,
              "horizon": args.horizon, "orders": orders, "max_queries": args.max_queries,
              "max_kernels": args.max_kernels, "split": args.split, "batches": 0, "samples": 0,
              "accuracy": None, "attention": [], "ssm": [], "agreement": None}
    if attention.layers or spectrum.layers:
        loader, split, name = loader_for(datamodule, args.split)
        report["split"] = split_label(split, name)
        input_key, run = RUNNERS[args.task]
        right = 0
        with torch.no_grad(), attention, spectrum:
            for batch in batches(datamodule, loader, device, input_key, args.batches,
                                 f"attention kernels and SSM spectra on the {report['split']} split"):
                preds, labels, _ = run(model, batch)
                report["batches"] += 1
                report["samples"] += len(labels)
                right += sum(p == y for p, y in zip(preds, labels))
        if report["samples"] == 0:
            raise SystemExit(f"diagnose: the {args.split} split gave no batch")
        report["accuracy"] = right / report["samples"]
        if attention.layers:
            print(f"[diagnose] fitting ε_exp (m = {', '.join(map(str, orders))}) of {len(attention.layers)} attention "
                  "layers", flush=True)
        report["attention"] = [summarize_attention(r, orders, args.max_kernels)
                               for r in attention.records.values()]
        report["ssm"] = [r.summary() for r in spectrum.records.values()]
        if attention.layers and not any(layer["kernels"] for layer in report["attention"]):
            print(f"[diagnose] no sequence of the {args.split} batches has {args.horizon} real tokens: no attention "
                  "kernel to fit; lower --horizon", flush=True)
    if args.other_ckpt is not None:
        report["agreement"] = compare(args, model, datamodule, other_config, overrides, module_cls, data_cls, device)
        report["agreement"]["other_ckpt_path"] = args.other_ckpt

    written = write_report(report, out)
    print(f"[diagnose] {len(report['attention'])} attention and {len(report['ssm'])} SSM layers, "
          f"{report['samples']} samples, in {time.perf_counter() - start:.1f}s; report in {out}: "
          + ", ".join(p.name for p in written), flush=True)
    return report


def compare(args, model, datamodule, other_config: Path, overrides: dict, module_cls, data_cls, device) -> dict:
    """§5.5 agreement of the checkpoint and --other_ckpt on --agreement_split, each with its own run's data."""
    other = load_model(module_cls, Path(args.other_ckpt), device, "--other_ckpt")
    other_data = build_data(data_cls, other_config, overrides)
    loader, split, name = loader_for(datamodule, args.agreement_split, fallback=True)
    label = split_label(split, name)
    mine = predictions(args.task, model, datamodule, loader, device, f"agreement, --ckpt_path on the {label} split",
                       args.agreement_batches)
    other_loader, _, _ = loader_for(other_data, split, name=name)
    # --agreement_batches counts this run's batches; the other run may batch the split otherwise (another
    # batch size or token budget), so it reads as many samples, not batches. Evaluation loaders order the
    # samples independently of the batch size (`LengthBucketBatchSampler`), so these are the same samples.
    samples = None if args.agreement_batches is None else len(mine[1])
    what = f"agreement, --other_ckpt on the {label} split" + (f", its first {samples} samples" if samples else "")
    theirs = predictions(args.task, other, other_data, other_loader, device, what, samples=samples)
    a, b, labels = aligned(mine, theirs)
    return {"split": label, **agreement(a, b, labels)}


if __name__ == "__main__":
    main()
