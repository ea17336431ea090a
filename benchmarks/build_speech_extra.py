"""More synthetic training speech for the offline speech set, without touching its test sets.

The shipped set (`../shared/data/speech`, built by its `build_speech.py`) holds 2.9 h of training speech from
about a fifth of the fortune-file entries its build accepts. Its plan is deterministic: planned for more hours,
the test split comes out identical and the training split begins with the shipped utterances (same sentence,
voice, variant, speed and pitch), then continues with sentences of entries that no shipped split uses. This
script takes those continuing utterances, in order, and synthesises them with the shipped build's own
functions (espeak-ng, then sox to 16 kHz Vorbis at its lowest quality, as the shipped `train-synth`), into one
LibriSpeech-layout split per `--hours` value (`train-synth-extra1`, `train-synth-extra2`, ...), so that each
part can travel on its own (the GPU machine takes 64 MiB a call):

    python benchmarks/build_speech_extra.py --out .devdata/speech --hours 0.75 3.6
    infomamba fit --task asr --config configs/speech_offline.yaml --data.root .devdata/speech \\
        --data.train_splits='[train-synth, train-synth-extra1, train-synth-extra2]'

Before synthesising anything it checks that the plan reproduces the shipped `meta/test-synth.tsv` and
`meta/train-synth.tsv` row for row, that the first shipped utterance synthesised again is byte-identical to the
shipped file (other package versions would give other speech), and that no new sentence is a shipped one.
Speakers keep their shipped ids (the same voices); chapters are `speaker * 100 + 10 * part + j` (the shipped
ones are `speaker * 100 + 1..2`), so no utterance id repeats across splits. `--out` gets the parts,
`meta/<part>.tsv` (the shipped columns) and `SOURCES-extra.txt`; it may not be the shipped folder.
Needs the Debian packages named in the shipped build's docstring (espeak-ng, sox, fortunes, word lists).
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

META_COLUMNS = ["utt_id", "voice", "variant", "speed_wpm", "pitch", "seconds", "source", "espeak_text"]
SHIPPED_TRAIN_HOURS = 2.87  # the shipped build's --train-hours (its SOURCES.txt)
TEST_MINUTES = 12           # and its --test-minutes


def load_build(source: Path):
    """The shipped `build_speech.py` as a module."""
    spec = importlib.util.spec_from_file_location("build_speech", source / "build_speech.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_speech"] = module  # its worker pool pickles its functions by module name
    spec.loader.exec_module(module)
    return module


def read_meta(path: Path) -> list[dict[str, str]]:
    """A shipped meta TSV (tab-separated, no quoting: sentences may hold quotes)."""
    head, *rows = path.read_text().splitlines()
    columns = head.split("\t")
    return [dict(zip(columns, row.split("\t"))) for row in rows]


def key(u: dict) -> tuple:
    """What makes an utterance's audio: sentence, voice, variant, speed, pitch."""
    return u["text"], u["voice"], u["variant"], int(u["speed"]), int(u["pitch"])


def meta_key(row: dict[str, str]) -> tuple:
    return row["espeak_text"], row["voice"], row["variant"], int(row["speed_wpm"]), int(row["pitch"])


def check_reproduces(planned: list[dict], shipped: list[dict[str, str]], split: str) -> None:
    """The plan's first rows are the shipped ones, in order; else the packages differ from the shipped build's."""
    for row, (u, r) in enumerate(zip([*planned, None][:len(shipped)], shipped), 1):
        if u is None or key(u) != meta_key(r):
            raise SystemExit(f"the plan does not reproduce the shipped {split}: row {row} of meta/{split}.tsv differs "
                             "(the installed packages are not the shipped build's, see its SOURCES.txt)")


def check_audio(bs, first: dict, source: Path) -> None:
    """The first shipped training utterance, synthesised again here, is byte-identical to the shipped file."""
    uid = bs.utt_id(first)
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, str(first["spk"]), str(first["chap"])))
        bs.synth_one((first, tmp, tmp))
        made = Path(tmp, str(first["spk"]), str(first["chap"]), uid + ".ogg").read_bytes()
    shipped = source / "train-synth" / str(first["spk"]) / str(first["chap"]) / (uid + ".ogg")
    if made != shipped.read_bytes():
        raise SystemExit(f"{uid}.ogg synthesised here differs from the shipped {shipped}: the installed espeak-ng or "
                         "sox is not the shipped build's (see its SOURCES.txt)")


def split_parts(extra: list[dict], hours: list[float], seconds) -> list[list[dict]]:
    """Consecutive parts of `extra` of about `hours` each (by `seconds(u)`, the build's estimate)."""
    parts, i = [], 0
    for h in hours:
        part, total = [], 0.0
        while total < h * 3600.0:
            if i == len(extra):
                raise SystemExit(f"the fortune entries ran out after {i} new utterances: ask for fewer hours")
            part.append(extra[i])
            total += seconds(extra[i])
            i += 1
        parts.append(part)
    return parts


def number_chapters(part: list[dict], index: int, chapters: int = 2) -> None:
    """Chapter `speaker * 100 + 10 * index + j` (j < chapters), utterances numbered within each chapter."""
    by_speaker = collections.defaultdict(list)
    for u in part:
        by_speaker[u["spk"]].append(u)
    for speaker, us in by_speaker.items():
        per = -(-len(us) // chapters)
        for j, u in enumerate(us):
            u["chap"], u["utt"] = speaker * 100 + 10 * index + j // per, j % per


def write_meta(path: Path, part: list[dict], durations: dict[str, float], utt_id) -> None:
    lines = ["\t".join(META_COLUMNS)]
    for u in part:
        uid = utt_id(u)
        lines.append("\t".join([uid, u["voice"], u["variant"], str(u["speed"]), str(u["pitch"]),
                                f"{durations[uid]:.2f}", u["src"], u["text"]]))
    path.write_text("\n".join(lines) + "\n")


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", type=Path, default=Path("../shared/data/speech"), help="the shipped set")
    p.add_argument("--out", type=Path, required=True, help="where the parts go (not the shipped folder)")
    p.add_argument("--hours", type=float, nargs="+", required=True, help="estimated hours of each part")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = p.parse_args(argv)
    if args.out.resolve() == args.source.resolve():
        raise SystemExit(f"--out {args.out} is the shipped set: a build never writes into its input")
    bs = load_build(args.source)
    utts, _, _ = bs.plan(SHIPPED_TRAIN_HOURS + sum(args.hours) * 1.2 + 1.0, TEST_MINUTES)
    shipped_train = read_meta(args.source / "meta" / "train-synth.tsv")
    check_reproduces(utts["test-synth"], read_meta(args.source / "meta" / "test-synth.tsv"), "test-synth")
    check_reproduces(utts["train-synth"], shipped_train, "train-synth")
    check_audio(bs, utts["train-synth"][0], args.source)
    extra = utts["train-synth"][len(shipped_train):]
    shipped_text = {r["espeak_text"] for r in shipped_train} | {u["text"] for u in utts["test-synth"]}
    if shipped_text & {u["text"] for u in extra}:
        raise SystemExit("a new sentence is a shipped one: the plan changed")
    parts = split_parts(extra, args.hours, lambda u: bs.est_seconds(u["trans"], u["speed"]))
    (args.out / "meta").mkdir(parents=True, exist_ok=True)
    report = ["| split | utterances | speakers | hours | MB |", "|---|---|---|---|---|"]
    for index, part in enumerate(parts, 1):
        split = f"train-synth-extra{index}"
        number_chapters(part, index)
        print(f"[build_speech_extra] {split}: synthesising {len(part)} utterances", flush=True)
        durations = bs.write_split(str(args.out), split, part, args.jobs)
        write_meta(args.out / "meta" / f"{split}.tsv", part, durations, bs.utt_id)
        report.append(f"| {split} | {len(part)} | {len({u['spk'] for u in part})} | "
                      f"{sum(durations.values()) / 3600:.3f} | {folder_bytes(args.out / split) / 1e6:.1f} |")
    versions = [f"  {pkg:28s} {bs.pkg_version(pkg)}" for pkg in ("espeak-ng", "sox", "fortunes", "fortunes-min")]
    espeak = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout.strip()
    command = "python benchmarks/build_speech_extra.py " + " ".join(sys.argv[1:] if argv is None else argv)
    text = "\n".join([f"Built with: {command}", "", *report, "", "Packages:", *versions, f"  {espeak}", "",
                      "The plan reproduced meta/test-synth.tsv and meta/train-synth.tsv of the shipped set row for",
                      "row, its first training utterance synthesised again is byte-identical to the shipped file, and",
                      "no sentence of these parts is in a shipped split.", ""])
    (args.out / "SOURCES-extra.txt").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
