"""Training waveform augmentation: speed perturbation, the telephone channel, and where the data module applies them."""

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch.utils.data import DataLoader

from infomamba.tasks.asr import augment
from infomamba.tasks.asr.audio import LogMel, load_audio
from infomamba.tasks.asr.augment import (
    WaveformAugment,
    add_white_noise,
    mu_law_codec,
    speed_perturb,
    speed_perturbed_length,
    telephone,
)
from infomamba.tasks.asr.datamodule import ASRDataModule, ASRDataset, collate_asr

SR = 16000
MEL = LogMel()
EDGE = "1-1-0009"  # CTC-feasible as recorded (44 frames // 4 = 11 labels), not when played 1.1x faster


def sines(freqs_amps: dict[float, float], seconds: float = 0.5, sr: int = SR) -> torch.Tensor:
    t = torch.arange(round(sr * seconds), dtype=torch.float64) / sr
    return sum(a * torch.sin(2 * math.pi * f * t) for f, a in freqs_amps.items()).float()


def spectrum(wav: torch.Tensor, sr: int = SR) -> tuple[torch.Tensor, torch.Tensor]:
    """Frequencies (Hz) and energies of ``wav``'s real FFT bins."""
    return torch.fft.rfftfreq(wav.numel(), 1 / sr), torch.fft.rfft(wav.double()).abs() ** 2


def energy_above(wav: torch.Tensor, hz: float) -> float:
    freqs, energy = spectrum(wav)
    return float(energy[freqs > hz].sum())


def snr_db(clean: torch.Tensor, noisy: torch.Tensor) -> float:
    return 10 * math.log10(float(clean.double().pow(2).sum() / (noisy - clean).double().pow(2).sum()))


# ---- the pieces ------------------------------------------------------------------------------------

@pytest.mark.parametrize("factor", [1.1, 0.9])
def test_speed_perturb_scales_length_and_pitch_together(factor):
    wav = sines({1000.0: 0.5}, seconds=1.0)
    out = speed_perturb(wav, SR, factor)
    assert out.numel() == speed_perturbed_length(wav.numel(), SR, factor)
    assert abs(out.numel() - wav.numel() / factor) <= 1
    freqs, energy = spectrum(out)
    assert float(freqs[energy.argmax()]) == pytest.approx(1000.0 * factor, abs=3.0)


def test_telephone_removes_what_lies_above_4khz_and_keeps_the_voice_band():
    wav = sines({1000.0: 0.3, 6000.0: 0.5}, seconds=0.5)[:-1]  # odd length: resampling 16k -> 8k -> 16k adds one
    out = telephone(wav, SR, snr_db=30.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == wav.shape
    assert energy_above(out, 4000) < 0.01 * energy_above(wav, 4000)
    freqs, before = spectrum(wav)
    _, after = spectrum(out)
    tone = (freqs - 1000).abs() < 10
    assert 0.5 < float(after[tone].sum() / before[tone].sum()) < 1.5


def test_mu_law_codec_has_256_levels_fine_near_zero_and_saturates():
    ramp = torch.linspace(-1.5, 1.5, 20001)
    out = mu_law_codec(ramp)
    assert 200 <= out.unique().numel() <= 256
    assert out.abs().max() <= 1.0 and out[0] == -1.0 and out[-1] == 1.0
    inside = ramp.abs() <= 1.0
    assert (out[inside] - ramp[inside]).abs().max() < 0.03
    quiet = ramp.abs() < 0.01  # mu-law's steps are fine at low level; linear 8 bits would err up to 0.004
    assert (out[quiet] - ramp[quiet]).abs().max() < 0.001


@pytest.mark.parametrize("target", [15.0, 27.3, 35.0])
def test_white_noise_has_the_requested_snr(target):
    clean = sines({440.0: 0.2, 1300.0: 0.05})
    noisy = add_white_noise(clean, target, torch.Generator().manual_seed(1))
    assert snr_db(clean, noisy) == pytest.approx(target, abs=0.5)
    assert torch.equal(add_white_noise(torch.zeros(800), target), torch.zeros(800))


def test_augment_draws_factors_probability_and_snr_from_their_ranges(monkeypatch):
    speeds, snrs = [], []
    monkeypatch.setattr(augment, "speed_perturb", lambda wav, sr, factor: speeds.append(factor) or wav)
    monkeypatch.setattr(augment, "telephone", lambda wav, sr, snr, generator: snrs.append(snr) or wav)
    aug = WaveformAugment(SR, speed_perturb=(0.9, 1.0, 1.1), telephone_prob=0.3, telephone_snr_db=(15.0, 35.0))
    generator = torch.Generator().manual_seed(0)
    draws = 600
    for _ in range(draws):
        aug(torch.zeros(10), generator)
    counts = {f: speeds.count(f) for f in (0.9, 1.0, 1.1)}
    assert sum(counts.values()) == draws and min(counts.values()) > draws / 3 - 50
    assert len(snrs) == pytest.approx(0.3 * draws, abs=50)
    assert 15.0 <= min(snrs) < 17.0 and 33.0 < max(snrs) <= 35.0


@pytest.mark.parametrize("options, name", [
    ({"speed_perturb": (0.9, 0.0)}, "speed_perturb"),
    ({"speed_perturb": (-1.1,)}, "speed_perturb"),
    ({"telephone_prob": 1.5}, "telephone_prob"),
    ({"telephone_prob": -0.1}, "telephone_prob"),
    ({"telephone_snr_db": (35.0, 15.0)}, "telephone_snr_db"),
    ({"telephone_snr_db": (15.0,)}, "telephone_snr_db"),
    ({"telephone_prob": 0.5, "sample_rate": 4000}, "sample_rate"),
])
def test_bad_options_are_one_line_errors_naming_the_option(options, name):
    with pytest.raises(ValueError, match=name) as err:
        ASRDataModule(root="unused", **options)
    assert "\n" not in str(err.value)


# ---- in the data module ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """train-clean-100 (4 utterances + the CTC edge case) and dev-clean (2), two-word transcripts."""
    base = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    for split, speaker, lengths in (("train-clean-100", 1, [9000, 11000, 12000, 14000]),
                                    ("dev-clean", 2, [9000, 10000])):
        folder = base / split / str(speaker) / "1"
        folder.mkdir(parents=True)
        utts = {f"{speaker}-1-{i:04d}": n for i, n in enumerate(lengths)}
        if split == "train-clean-100":
            utts[EDGE] = 7000
        for uid, n in utts.items():
            t = np.arange(n) / SR
            wav = 0.3 * np.sin(2 * np.pi * rng.uniform(200, 900) * t) + 0.1 * np.sin(2 * np.pi * 6000 * t)
            soundfile.write(folder / f"{uid}.flac", wav.astype(np.float32), SR)
        (folder / f"{speaker}-1.trans.txt").write_text("".join(f"{uid} ALPHA BRAVO\n" for uid in utts))
    return base


def make_dm(root: Path, **kwargs) -> ASRDataModule:
    args = dict(root=str(root), train_splits=["train-clean-100"], val_splits=["dev-clean"],
                test_splits=["dev-clean"], batch_size=2, predict_path=str(root / "dev-clean"))
    args.update(kwargs)
    return ASRDataModule(**args)


def as_read(item: dict) -> torch.Tensor:
    """Features of an item's audio read without augmentation (what the data module gave before it)."""
    return MEL(load_audio(item["audio_filepath"], SR))


def test_without_augmentation_training_samples_are_as_read_and_draw_nothing(root):
    dm = make_dm(root, speed_perturb=(), telephone_prob=0.0)
    dm.setup("fit")
    state = torch.get_rng_state()
    items = [dm._train[i] for i in range(len(dm._train))]
    assert torch.equal(torch.get_rng_state(), state)
    for item in items:
        assert torch.equal(item["features"], as_read(item))


def test_augmentation_changes_training_audio_only(root):
    dm = make_dm(root, speed_perturb=(1.1,), telephone_prob=1.0, val_splits=[], val_fraction=0.4)
    dm.setup(None)
    dm.setup("predict")
    evaluated = [*dm._val.values(), *dm._test.values(), dm._predict]
    assert "heldout" in dm.val_split_names and all(len(ds) for ds in evaluated)
    for ds in evaluated:
        for i in range(len(ds)):
            assert torch.equal(ds[i]["features"], as_read(ds[i]))
    for i in range(len(dm._train)):
        item = dm._train[i]
        samples = soundfile.info(item["audio_filepath"]).frames
        assert item["features"].shape[0] == MEL.num_frames(speed_perturbed_length(samples, SR, 1.1))

    phone = make_dm(root, telephone_prob=1.0)
    phone.setup("fit")
    for i in range(len(phone._train)):
        item, read = phone._train[i], as_read(phone._train[i])
        assert item["features"].shape == read.shape and not torch.allclose(item["features"], read, atol=0.1)


def test_dataloader_workers_draw_different_values_and_a_seed_repeats(root):
    dm = make_dm(root)
    dm.setup("fit")
    same = dm._train.utts[:1] * 4
    ds = ASRDataset(same, dm.vocab, MEL, SR, WaveformAugment(SR, telephone_prob=1.0, telephone_snr_db=(20.0, 20.0)))

    def features() -> list[torch.Tensor]:
        torch.manual_seed(0)
        loader = DataLoader(ds, batch_size=1, num_workers=2, collate_fn=collate_asr)
        return [batch["features"][0] for batch in loader]

    first = features()
    assert all(not torch.equal(first[i], first[j]) for i in range(4) for j in range(i + 1, 4))
    assert all(torch.equal(a, b) for a, b in zip(first, features()))


def test_speed_perturbation_sizes_training_lengths_at_the_worst_factor(root):
    plain, fast = make_dm(root), make_dm(root, speed_perturb=(1.0, 1.1))
    plain.setup("fit")
    fast.setup("fit")
    assert "too_short_for_ctc" not in plain.split_stats["train-clean-100"]["skipped"]
    assert fast.split_stats["train-clean-100"]["skipped"] == {"too_short_for_ctc": 1}
    assert EDGE not in {u.utt_id for u in fast._train.utts}

    budget = 180
    slow = make_dm(root, speed_perturb=(0.8,), max_frames=budget, batch_size=None)
    slow.setup("fit")
    for batch in slow.train_dataloader():
        assert batch["features"].shape[0] * batch["features"].shape[1] <= budget
