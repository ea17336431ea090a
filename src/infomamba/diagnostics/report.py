"""The diagnostics report: per-layer summaries, a JSON file, a markdown table and PNG plots.

Files (written by `write_report` into one folder, by default `<run>/diagnostics/<checkpoint>/`):
- `diagnostics.json`: everything below, non-finite numbers written as null (strict JSON);
- `diagnostics.md`: the tables (ε_exp per attention layer for each m, head means, with diagonal and
  horizon mass; ρ of each SSM direction; agreement);
- `eps_exp.png`: ε_exp (mean over heads) per attention layer, one line per m (paper §3.2);
- `example_kernel.png`: one attention kernel w_t(ℓ) with its m-term fits (the kernel of median ε at
  m = 2 of the head with the largest ε_exp, in the layer with the largest ε_exp);
- `ssm_spectrum.png`: 1 - ρ at the max and the quantiles per SSM direction (H2: how close to 1).

Averages: ε_exp of a head is the mean of ε_t over its sampled kernels (queries t of all samples); the
layer value is the mean over its heads (each head is its own kernel family, §3.2 compares per head).
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import numpy as np

from .attention_kernels import LayerRecord
from .exponential_fit import exponential_fits

EXAMPLE_ORDER = 2
FILES = ("diagnostics.json", "diagnostics.md", "eps_exp.png", "example_kernel.png", "ssm_spectrum.png")


def _subsample(kernels: np.ndarray, max_kernels: int | None, seed: int) -> np.ndarray:
    if max_kernels is None or kernels.shape[0] <= max_kernels:
        return kernels
    keep = np.sort(np.random.default_rng(seed).choice(kernels.shape[0], max_kernels, replace=False))
    return kernels[keep]


def _fit_heads(kernels: np.ndarray, orders) -> tuple[dict, dict, dict]:
    """(n, H, K) kernels -> ({m: (n, H) ε_t}, {m: (n, H, K) fits}, {m: (H,) ε_exp})."""
    n, H, K = kernels.shape
    eps, fits = exponential_fits(kernels.reshape(n * H, K), orders)
    eps = {m: e.reshape(n, H) for m, e in eps.items()}
    fits = {m: f.reshape(n, H, K) for m, f in fits.items()}
    means = {m: _nanmean(e, axis=0) for m, e in eps.items()}
    return eps, fits, means


def _nanmean(values: np.ndarray, axis=None):
    """np.nanmean without its warning for an all-NaN slice (whose NaN is the answer: no kernel)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def summarize_attention(record: LayerRecord, orders, max_kernels: int | None = 4096, seed: int = 0) -> dict:
    """One attention layer's entry: ε_exp per head and m for each direction, diagonal and horizon mass,
    and an example kernel with its fits. `max_kernels` caps the query rows fitted per layer, each one
    kernel per head (a uniform subsample of the sampled queries, fixed seed; None: all)."""
    orders = sorted(orders)
    out = {"layer": record.name, "index": record.index, "heads": record.heads, "causal": record.causal,
           "diagonal_mass": record.diagonal_mass().tolist()}
    out["diagonal_mass_mean"] = float(np.mean(out["diagonal_mass"]))
    for direction in record.kernels:
        kernels = _subsample(record.stacked(direction), max_kernels, seed)
        key = "" if direction == "past" else f"_{direction}"
        out[f"kernels{key}"] = int(kernels.shape[0])
        if kernels.shape[0] == 0:
            out[f"eps_exp{key}"] = {str(m): [math.nan] * record.heads for m in orders}
            out[f"eps_exp_mean{key}"] = {str(m): math.nan for m in orders}
            continue
        out[f"horizon_mass{key}"] = kernels.sum(-1).mean(0).tolist()
        eps, fits, means = _fit_heads(kernels, orders)
        out[f"eps_exp{key}"] = {str(m): means[m].tolist() for m in orders}
        out[f"eps_exp_mean{key}"] = {str(m): float(_nanmean(means[m])) for m in orders}
        if direction == "past":
            out["example"] = _example(kernels, eps, fits, orders)
    if "kernels" not in out:
        out["kernels"] = 0
    return out


def _example(kernels: np.ndarray, eps: dict, fits: dict, orders) -> dict | None:
    """The kernel of median ε at m = EXAMPLE_ORDER (or the smallest m) of the head with the largest ε_exp."""
    m_ref = EXAMPLE_ORDER if EXAMPLE_ORDER in eps else orders[0]
    per_head = _nanmean(eps[m_ref], axis=0)
    if not np.isfinite(per_head).any():
        return None
    head = int(np.nanargmax(per_head))
    column = eps[m_ref][:, head]
    finite = np.flatnonzero(np.isfinite(column))
    i = int(finite[np.argsort(column[finite])[len(finite) // 2]])
    return {"head": head, "order": m_ref, "kernel": kernels[i, head].tolist(),
            "eps": {str(m): float(eps[m][i, head]) for m in orders},
            "fits": {str(m): fits[m][i, head].tolist() for m in orders}}


def strict_json(value):
    """The report with NaN / inf replaced by None (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _num(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–" if value is None or math.isnan(value) else ("∞" if value > 0 else "-∞")
    if isinstance(value, float) and value != 0 and abs(value) < 10 ** -digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def markdown(report: dict) -> str:
    """The report's tables in markdown."""
    lines = ["# Consistency-boundary diagnostics (paper §3.2, §5.5)", "",
             f"- checkpoint: `{report['ckpt_path']}` (task {report['task']})",
             f"- data: {report['split']} split, {report['samples']} samples in {report['batches']} batches"
             + (f"; accuracy {_num(report['accuracy'])} on these samples only (the loader's first batches, by "
                f"length: `infomamba validate` / `test` score the whole split)"
                if report.get("accuracy") is not None else ""),
             f"- ε_exp: {report['method']}",
             f"- horizon K = {report['horizon']} lags, up to {report['max_queries']} query rows per sequence, "
             f"at most {report['max_kernels']} query rows per layer (one kernel per head each)", ""]
    orders = report["orders"]
    if report["attention"]:
        lines += ["## Attention layers: ε_exp (mean over heads) and diagonal mass", "",
                  "| layer | block | causal | heads | kernels | " + " | ".join(f"ε_exp m={m}" for m in orders)
                  + " | diagonal mass | horizon mass |",
                  "|---|---|---|---|---|" + "---|" * len(orders) + "---|---|"]
        for layer in report["attention"]:
            eps = layer.get("eps_exp_mean", {})
            horizon = layer.get("horizon_mass")
            lines.append(f"| `{layer['layer']}` | {layer['index']} | {layer['causal']} | {layer['heads']} | "
                         f"{layer['kernels']} | " + " | ".join(_num(eps.get(str(m))) for m in orders)
                         + f" | {_num(layer['diagonal_mass_mean'])} | "
                         + (_num(float(np.mean(horizon))) if horizon else "–") + " |")
        future = [layer for layer in report["attention"] if "eps_exp_mean_future" in layer]
        if future:
            lines += ["", "Anti-causal half (keys t + ℓ) of the non-causal layers:", "",
                      "| layer | kernels | " + " | ".join(f"ε_exp m={m}" for m in orders) + " |",
                      "|---|---|" + "---|" * len(orders)]
            for layer in future:
                eps = layer["eps_exp_mean_future"]
                lines.append(f"| `{layer['layer']}` | {layer['kernels_future']} | "
                             + " | ".join(_num(eps.get(str(m))) for m in orders) + " |")
        lines += ["", "Per head (ε_exp at each m, then diagonal mass):", ""]
        for layer in report["attention"]:
            heads = range(layer["heads"])
            cells = "; ".join(
                f"h{h}: " + " / ".join(_num(layer.get("eps_exp", {}).get(str(m), [None] * layer["heads"])[h], 3)
                                       for m in orders) + f", diag {_num(layer['diagonal_mass'][h], 3)}"
                for h in heads)
            lines.append(f"- `{layer['layer']}`: {cells}")
        lines.append("")
    if report["ssm"]:
        qs = list(report["ssm"][0]["rho_quantiles"])
        lines += ["## SSM directions: spectral radius ρ = max_n exp(dt A) over real tokens and channels (H2)", "",
                  "| layer | block | reverse | values | ρ max | " + " | ".join(f"ρ q{q}" for q in qs)
                  + " | half-life at median (tokens) |",
                  "|---|---|---|---|---|" + "---|" * len(qs) + "---|"]
        for s in report["ssm"]:
            lines.append(f"| `{s['layer']}` | {s['index']} | {s['reverse']} | {s['values']} | "
                         f"{_num(s['rho_max'], 6)} | " + " | ".join(_num(s["rho_quantiles"][q], 6) for q in qs)
                         + f" | {_num(s['half_life_median'], 1)} |")
        lines.append("")
    if report.get("agreement"):
        a = report["agreement"]
        lines += ["## Agreement (paper §5.5)", "",
                  f"A = `{report['ckpt_path']}`, B = `{a['other_ckpt_path']}`, {a['split']} split, "
                  f"{a['n']} samples.", "",
                  "| both right | both wrong | disagree | A only right | B only right | same prediction "
                  "| acc A | acc B |",
                  "|---|---|---|---|---|---|---|---|",
                  "| " + " | ".join(_num(a[k]) for k in ("both_right", "both_wrong", "disagree", "a_only_right",
                                                          "b_only_right", "same_prediction", "accuracy_a",
                                                          "accuracy_b")) + " |", ""]
    return "\n".join(lines)


def _figure(width: float = 6.0, height: float = 4.0):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend
    return Figure(figsize=(width, height), dpi=110)


def plot_eps_exp(report: dict, path: Path) -> bool:
    layers = [layer for layer in report["attention"] if layer.get("kernels")]
    if not layers:
        return False
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    for m in report["orders"]:
        y = np.array([layer["eps_exp_mean"][str(m)] for layer in layers], dtype=float)
        ax.plot(x, np.maximum(y, 1e-12), marker="o", label=f"m = {m}")
    ax.set_yscale("log")
    ax.set_xticks(x, [str(layer["index"]) if layer["index"] is not None else layer["layer"] for layer in layers])
    ax.set_xlabel("attention layer (encoder block)")
    ax.set_ylabel("ε_exp (mean over heads)")
    ax.set_title(f"ε_exp, horizon K = {report['horizon']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    return True


def plot_example(report: dict, path: Path) -> bool:
    layers = [layer for layer in report["attention"] if layer.get("example")]
    if not layers:
        return False
    ref = str(layers[0]["example"]["order"])
    layer = max(layers, key=lambda lay: np.nan_to_num(lay["eps_exp_mean"][ref], nan=-1.0))
    example = layer["example"]
    fig = _figure()
    ax = fig.add_subplot()
    lags = np.arange(len(example["kernel"]))
    ax.plot(lags, example["kernel"], "ko", label="w_t(ℓ)")
    for m, fit in example["fits"].items():
        ax.plot(lags, fit, label=f"m = {m} (ε = {example['eps'][m]:.2g})")
    ax.set_xlabel("lag ℓ (key t - ℓ)")
    ax.set_ylabel("attention weight")
    ax.set_title(f"{layer['layer']}, head {example['head']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    return True


def plot_ssm(report: dict, path: Path) -> bool:
    layers = [s for s in report["ssm"] if s["values"]]
    if not layers:
        return False
    fig = _figure()
    ax = fig.add_subplot()
    x = np.arange(len(layers))
    for q in layers[0]["rho_quantiles"]:
        ax.plot(x, [max(1 - s["rho_quantiles"][q], 1e-12) for s in layers], marker="o", label=f"1 - ρ at q{q}")
    ax.plot(x, [max(1 - s["rho_max"], 1e-12) for s in layers], "k^", label="1 - max ρ")
    ax.set_yscale("log")
    ax.set_xticks(x, [f"{s['index']}{'r' if s['reverse'] else ''}" for s in layers])
    ax.set_xlabel("SSM direction (encoder block, r = reverse scan)")
    ax.set_ylabel("1 - ρ (smaller: longer memory)")
    ax.set_title("spectral radius of exp(dt A) over the data")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path)
    return True


def write_report(report: dict, folder: Path) -> list[Path]:
    """Write the JSON, the markdown and the plots that apply into `folder`; returns the written paths.

    Every file is written aside (a hidden temporary name in `folder`) and renamed over its final name only once all
    of them are: a report cut short (an error, Ctrl-C) leaves an earlier report whole and no partial file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    aside = {name: folder / f".{os.getpid()}-{name}" for name in FILES}
    try:
        aside["diagnostics.json"].write_text(json.dumps(strict_json(report), indent=1, allow_nan=False) + "\n")
        aside["diagnostics.md"].write_text(markdown(report) + "\n")
        made = {"diagnostics.json", "diagnostics.md"}
        made |= {name for name, plot in (("eps_exp.png", plot_eps_exp), ("example_kernel.png", plot_example),
                                         ("ssm_spectrum.png", plot_ssm)) if plot(report, aside[name])}
        for name in FILES:
            if name in made:
                os.replace(aside[name], folder / name)
            elif (folder / name).exists():
                (folder / name).unlink()  # a plot of an earlier run that no longer applies
    finally:
        for path in aside.values():
            path.unlink(missing_ok=True)
    return [folder / name for name in FILES if name in made]
