"""Tiny generated datasets for the task tests that go through the CLI (a few seconds of training)."""
from pathlib import Path

import numpy as np
import soundfile

TINY_MODEL = ["--model.encoder.dim=16", "--model.encoder.depth=1",
              "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8, chunk: 8}",
              "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
WORDS = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO"]


def write_librispeech(root: Path, utterances: int = 5) -> None:
    """train-clean-100 and dev-clean, two speakers each: 1.2 s tones with two-word transcripts."""
    rng = np.random.default_rng(0)
    for split in ("train-clean-100", "dev-clean"):
        for spk in (100, 101):
            folder = root / split / str(spk) / "7"
            folder.mkdir(parents=True)
            lines = []
            for utt in range(utterances):
                uid = f"{spk}-7-{utt:04d}"
                t = np.arange(int(16000 * 1.2)) / 16000
                audio = 0.3 * np.sin(2 * np.pi * (200 + 40 * utt) * t) + 0.01 * rng.standard_normal(t.size)
                soundfile.write(folder / f"{uid}.flac", audio.astype(np.float32), 16000)
                lines.append(f"{uid} {' '.join(rng.choice(WORDS, size=2))}")
            (folder / f"{spk}-7.trans.txt").write_text("\n".join(lines) + "\n")


def write_sentiment_csv(root: Path, rows: int = 48) -> None:
    """train.csv / test.csv with `text` and string `label` columns (pos / neg)."""
    rng = np.random.default_rng(0)
    words = {"pos": ["great", "wonderful", "lovely", "superb"], "neg": ["awful", "terrible", "boring", "dull"]}
    root.mkdir(parents=True)
    for split, n in (("train", rows), ("test", rows // 4)):
        lines = ["text,label"]
        for i in range(n):
            label = ("pos", "neg")[i % 2]
            lines.append(f"a {' '.join(rng.choice(words[label], size=3))} film,{label}")
        (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
