"""The whole ASR path can learn: a handful of training utterances are memorised to near-zero CER.

This measures memorisation on the training utterances themselves (an overfit check of the pipeline:
features, subsampling lengths, CTC targets, decoding), not generalisation."""
import lightning as L
import numpy as np
import soundfile
import torch
from jiwer import cer

from infomamba import EncoderConfig
from infomamba.losses import LossWeights
from infomamba.tasks.asr.datamodule import ASRDataModule
from infomamba.tasks.asr.module import CTCSpeechRecognizer

TEXTS = ["ALPHA BRAVO", "CHARLIE DELTA", "ECHO FOXTROT", "GOLF HOTEL"]


def write_split(root, rng):
    folder = root / "train-clean-100" / "19" / "198"
    folder.mkdir(parents=True)
    lines = []
    for i, text in enumerate(TEXTS):
        t = np.arange(int(16000 * 1.6)) / 16000
        tones = sum(np.sin(2 * np.pi * f * t) for f in (300 + 150 * i, 900 + 90 * i))
        audio = 0.2 * tones * np.sin(2 * np.pi * (1.5 + i) * t) + 0.01 * rng.standard_normal(t.size)
        soundfile.write(folder / f"19-198-{i:04d}.flac", audio.astype(np.float32), 16000)
        lines.append(f"19-198-{i:04d} {text}")
    (folder / "19-198.trans.txt").write_text("\n".join(lines) + "\n")


def test_a_few_utterances_are_memorised(tmp_path):
    write_split(tmp_path, np.random.default_rng(0))
    L.seed_everything(0)
    dm = ASRDataModule(root=str(tmp_path), train_splits=["train-clean-100"], val_splits=["train-clean-100"],
                       test_splits=[], batch_size=4)
    model = CTCSpeechRecognizer(EncoderConfig(dim=64, depth=2, mixer_options={"k_max": 16, "d_state": 8}),
                                LossWeights(use_nce=False), lr=3e-3, spec_augment=False, warmup_ratio=0.05)
    trainer = L.Trainer(max_steps=250, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                        limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    model.eval()
    batch = next(iter(dm.train_dataloader()))
    with torch.no_grad():
        log_probs, lengths, _ = model(batch["features"], batch["feature_lengths"])
    hyps = model.decode(log_probs, lengths)
    assert cer(batch["transcripts"], hyps) < 0.05, list(zip(batch["transcripts"], hyps))
