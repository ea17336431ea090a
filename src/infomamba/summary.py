"""Parameter counts and forward FLOPs of an encoder, and the markdown table that compares mixers.

FLOPs: `torch.utils.flop_counter.FlopCounterMode` counts matmuls, convolutions and attention (2 per
multiply-add; the CPU flash-attention op, which torch leaves out, gets torch's own attention
formula); softmax, norms and elementwise ops are not counted. The counter does not see the selective
scan's recurrence, so every `SelectiveSSM` call in the Mamba-1 form adds the scan's analytic cost 9 B L E N
(Mamba's count for one direction of width E, state N) in place of the readout contraction C_t s_t
(2 B L E N) that the counter does see in the CPU reference scan. The SSD form (`ssm_heads`) scans by chunked
matmuls (`ops/ssd_scan`), which the counter sees whole: nothing is added. The forward runs on the meta device
(shapes only, no arithmetic: the counts are those of the CPU reference path, in a fraction of its time),
batch `batch`, no padding.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from .arguments import parse_mixer_entry, positive
from .config import EncoderConfig
from .encoder import Encoder
from .layers.ssm import SelectiveSSM
from .mixers import mixer_options


def _cpu_attention_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


_MISSING_FORMULAS = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_attention_flops}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _scan_flops(encoder: Encoder, x: torch.Tensor, grid) -> tuple[int, int]:
    """Forward the encoder under the flop counter; returns (counted FLOPs, scan correction)."""
    correction = 0

    def hook(module: SelectiveSSM, args, out: torch.Tensor) -> None:
        nonlocal correction
        if module.heads is None:
            B, L, E = out.shape
            correction += (9 - 2) * B * L * E * module.d_state

    handles = [m.register_forward_hook(hook) for m in encoder.modules() if isinstance(m, SelectiveSSM)]
    try:
        with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=_MISSING_FORMULAS) as counter:
            encoder(x, grid=grid)
    finally:
        for handle in handles:
            handle.remove()
    return counter.get_total_flops(), correction


def summarize(config: EncoderConfig, seq_len: int, batch: int = 1, grid=None, *, flops: bool = True) -> dict:
    """{'params_total', 'params_mixer', 'params_other', 'flops' (forward, None when flops=False)}.

    params_mixer counts the blocks' mixers; params_other the rest (norms, MLPs, cross-layer
    aggregators). Built on the meta device: no memory, and a forward that only propagates shapes.
    """
    config = copy.deepcopy(config)
    with torch.device("meta"):
        encoder = Encoder(config)
    mixer = sum(_count(block.mixer) for block in encoder.stack.blocks)
    total = _count(encoder)
    result = {"params_total": total, "params_mixer": mixer, "params_other": total - mixer, "flops": None}
    if flops:
        encoder.eval()
        x = torch.empty(batch, seq_len, config.dim, device="meta")
        counted, correction = _scan_flops(encoder, x, grid)
        result["flops"] = counted + correction
    return result


def _amount(value: float) -> str:
    """Millions of parameters or GFLOPs for the table: two decimals, two significant digits below 0.1 (a tiny
    model's 0.0045 M parameters had read 0.00)."""
    return f"{value:.2f}" if value >= 0.1 or value == 0 else f"{value:.2g}"


def entry_configs(mixers: list[str], dim: int, depth: int,
                  options_by_mixer: dict[str, dict] | None = None) -> dict[str, EncoderConfig]:
    """The encoder of each `--mixers` entry, `NAME` or `NAME{yaml}` (`parse_mixer_entry`), by the entry as given: the
    options of its name in `options_by_mixer` (the size-matched ones), the entry's own over them."""
    options_by_mixer = options_by_mixer or {}
    return {label: EncoderConfig(dim=dim, depth=depth, mixer=name,
                                 mixer_options={**options_by_mixer.get(name, {}), **options})
            for label, name, options in map(parse_mixer_entry, mixers)}


def summary_lines(mixers: list[str], dim: int, depth: int, seq_len: int,
                  options_by_mixer: dict[str, dict] | None = None, *, flops: bool = True) -> Iterator[str]:
    """The lines of `summary_table`, each row as soon as its mixer is counted (parameters first, for all)."""
    configs = entry_configs(mixers, dim, depth, options_by_mixer)
    params = {label: summarize(config, seq_len, flops=False) for label, config in configs.items()}
    reference = params.get("infomamba")
    yield f"dim {dim}, depth {depth}, seq_len {seq_len}, batch 1"
    yield ""
    yield "| mixer | mixer_options | params (M) | mixer params (M) | vs infomamba | forward GFLOPs |"
    yield "|---|---|---:|---:|---:|---:|"
    for label, row in params.items():
        options = ", ".join(f"{k}={v}" for k, v in configs[label].mixer_options.items()) or "defaults"
        ratio = f"{row['params_total'] / reference['params_total'] - 1:+.1%}" if reference else "-"
        gflops = _amount(summarize(configs[label], seq_len)["flops"] / 1e9) if flops else "-"
        yield (f"| {label} | {options} | {_amount(row['params_total'] / 1e6)} | {_amount(row['params_mixer'] / 1e6)} "
               f"| {ratio} | {gflops} |")


def summary_table(mixers: list[str], dim: int, depth: int, seq_len: int,
                  options_by_mixer: dict[str, dict] | None = None, *, flops: bool = True) -> str:
    """Markdown table: one row per `--mixers` entry (a mixer name, or `NAME{yaml}` with options of its own) at the
    given width/depth, parameters relative to the row of plain infomamba."""
    return "\n".join(summary_lines(mixers, dim, depth, seq_len, options_by_mixer, flops=flops))


SIZE_MATCHED = Path(__file__).resolve().parents[2] / "configs" / "size_matched.yaml"
"""The repository's size-matched mixer options (src/infomamba/ -> configs/), the default of `summary` and
`bench`: found from any working directory of a checkout or an editable install, absent beside a package
installed without the repository."""


def size_matched_options(path: str | Path | None, dim: int, depth: int,
                         seq_len: int | None = None) -> dict[str, dict]:
    """The mixer_options of the size-matched setting for (dim, depth) in a size_matched.yaml; {} when the file
    has no such setting, or for no path (size matching off). Of several settings for (dim, depth), which differ in
    the sequence length a mixer's per-position rows are sized for (Linformer's max_len), the one of the shortest
    seq_len that holds `seq_len`, else (or for no `seq_len`) the longest. A path that is not a file is a
    FileNotFoundError naming it: a misspelt file must not pass for one without the setting."""
    if not path:
        return {}
    if not Path(path).is_file():
        raise FileNotFoundError(f"size-matched options: no file {Path(path).absolute()}")
    table = yaml.safe_load(Path(path).read_text())
    settings = sorted((s for s in table.get("settings", {}).values() if (s.get("dim"), s.get("depth")) == (dim, depth)),
                      key=lambda s: s["seq_len"])
    if not settings:
        return {}
    holding = [s for s in settings if seq_len is not None and s["seq_len"] >= seq_len]
    chosen = holding[0] if holding else settings[-1]
    return {k: dict(v or {}) for k, v in chosen["mixer_options"].items()}


def command_size_matched_options(path: str | None, dim: int, depth: int, prog: str,
                                 seq_len: int | None = None) -> dict[str, dict]:
    """The options of `--size-matched` for `infomamba summary` and `infomamba bench`: the file given, none for
    '' (asked off), the repository's `SIZE_MATCHED` when the flag is left out. Rows not size-matched that were
    not asked to be so (no repository file beside an installed package; no setting for this dim and depth) get
    one line on stderr saying so: their parameter and speed ratios compare other model sizes. A given file that
    does not exist is a FileNotFoundError (`size_matched_options`, which `seq_len` is passed to)."""
    if path is None and not SIZE_MATCHED.is_file():
        print(f"{prog}: rows NOT size-matched (every mixer with its default options): no {SIZE_MATCHED} beside "
              "this installed package; pass the repository's configs/size_matched.yaml with --size-matched FILE",
              file=sys.stderr, flush=True)
        return {}
    path = SIZE_MATCHED if path is None else path
    options = size_matched_options(path, dim, depth, seq_len)
    if path and not options:
        print(f"{prog}: rows NOT size-matched (every mixer with its default options): {path} has no setting for "
              f"dim {dim}, depth {depth}", file=sys.stderr, flush=True)
    return options




def holding(name: str, options: dict, seq_len: int) -> dict:
    """`options` of mixer `name`, its `max_len` (rows of per-position parameters: Linformer's E and F, VMI-SA's
    alpha and beta; set or the default) raised to `seq_len` where shorter: such a mixer refuses a longer sequence."""
    default = mixer_options(name).get("max_len")
    if default is None or options.get("max_len", default) >= seq_len:
        return dict(options)
    return {**options, "max_len": seq_len}


def parser() -> argparse.ArgumentParser:
    """The argument parser of `infomamba summary` (see `main`)."""
    from .mixers import list_mixers

    p = argparse.ArgumentParser(prog="infomamba summary", description=main.__doc__)
    p.add_argument("--dim", type=positive, default=384, help="encoder width (default %(default)s)")
    p.add_argument("--depth", type=positive, default=12, help="encoder blocks (default %(default)s)")
    p.add_argument("--seq-len", type=positive, default=196,
                   help="tokens per sequence of the FLOP count (default %(default)s: 224 px in 16 px patches)")
    mixers = list_mixers()
    p.add_argument("--mixers", nargs="+", default=mixers, metavar="MIXER",
                   help=f"mixers to compare (default every one: {', '.join(mixers)}), or NAME{{yaml}} with options "
                   "over the size-matched ones (quote it in a shell), e.g. 'infomamba{ssm_heads: 12}'; the "
                   "'vs infomamba' column needs plain infomamba among them")
    p.add_argument("--size-matched", default=None, metavar="FILE",
                   help="YAML of size-matched mixer options, its setting for --dim and --depth applied (default "
                   "the repository's configs/size_matched.yaml, from any folder; '' for each mixer's defaults)")
    p.add_argument("--no-flops", action="store_true", help="parameters only (instant)")
    return p


def main(argv: list[str] | None = None) -> None:
    """`infomamba summary`: parameters and forward FLOPs per mixer, size-matched where a preset exists, as a
    markdown table on stdout (`infomamba summary > table.md` keeps the table alone: notes, such as the kernel
    paths and the time taken, go to stderr)."""
    p = parser()
    args = p.parse_args(argv)
    try:
        options = command_size_matched_options(args.size_matched, args.dim, args.depth, p.prog, args.seq_len)
    except FileNotFoundError as err:
        p.error(str(err))
    try:
        own = entry_configs(args.mixers, args.dim, args.depth)  # each entry with its own options alone
    except ValueError as err:
        p.error(str(err))
    for label, config in own.items():  # every entry checked before the first row
        try:
            summarize(config, args.seq_len, flops=False)
        except (ValueError, TypeError) as err:
            p.error(f"--mixers entry {label!r}: {str(err).splitlines()[0]}")
        if config.mixer_options.get("max_len", args.seq_len) < args.seq_len:
            p.error(f"--mixers entry {label!r}: max_len={config.mixer_options['max_len']} is shorter than --seq-len "
                    f"{args.seq_len}")
    for name in dict.fromkeys(config.mixer for config in own.values()):
        given = options.get(name, {})
        options[name] = holding(name, given, args.seq_len)
        if options[name] != given:
            print(f"{p.prog}: {name} counted with max_len={args.seq_len}: its max_len "
                  f"{given.get('max_len', mixer_options(name)['max_len'])} is shorter than --seq-len {args.seq_len}",
                  file=sys.stderr, flush=True)
    start = time.perf_counter()
    for line in summary_lines(args.mixers, args.dim, args.depth, args.seq_len, options, flops=not args.no_flops):
        print(line, flush=True)
    print(f"({len(args.mixers)} mixers in {time.perf_counter() - start:.1f}s)", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
