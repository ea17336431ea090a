"""Waveform augmentations for ASR training: speed perturbation and a simulated telephone channel.

The pieces are pure functions of a mono waveform (N,); randomness enters only through the
``generator`` argument (None: torch's default generator). ``WaveformAugment`` draws the random
choices per utterance and applies the pieces; the data module runs it on training audio only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torchaudio.functional as AF

TELEPHONE_RATE = 8000
TELEPHONE_BAND_HZ = (300.0, 3400.0)
MU_LAW_CHANNELS = 256


def speed_perturbed_length(num_samples: int, sample_rate: int, factor: float) -> int:
    """Samples that ``speed_perturb`` returns for ``num_samples`` input samples (about N / factor)."""
    return -(-num_samples * sample_rate // round(factor * sample_rate))


def speed_perturb(wav: torch.Tensor, sample_rate: int, factor: float) -> torch.Tensor:
    """Play ``wav`` ``factor`` times faster: tempo and pitch change together (a 1 kHz tone -> factor kHz).

    Ko et al. 2015, "Audio augmentation for speech recognition", as Kaldi and ESPnet do it with
    sox ``speed``: the samples are read as if recorded at ``factor * sample_rate`` and resampled
    (band-limited sinc) to ``sample_rate``. Length: ``speed_perturbed_length``.
    """
    return AF.resample(wav, orig_freq=round(factor * sample_rate), new_freq=sample_rate)


def telephone_bandpass(wav: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The 300-3400 Hz voice band of a telephone channel (ITU-T G.712), as two 2nd-order Butterworth
    sections (high-pass at 300 Hz, low-pass at 3400 Hz); output clamped to [-1, 1] by torchaudio's biquad."""
    low, high = TELEPHONE_BAND_HZ
    return AF.lowpass_biquad(AF.highpass_biquad(wav, sample_rate, low), sample_rate, high)


def add_white_noise(wav: torch.Tensor, snr_db: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian white noise scaled so that signal power / noise power is exactly ``snr_db`` dB
    (the power of the drawn noise itself, not its expectation); digital silence stays silent."""
    noise = torch.randn(wav.shape, generator=generator, dtype=wav.dtype)
    return AF.add_noise(wav, noise, torch.tensor(snr_db, dtype=wav.dtype))


def mu_law_codec(wav: torch.Tensor) -> torch.Tensor:
    """G.711-like 8-bit mu-law companding (encode to 256 codes and decode): at most 256 output levels.

    The input is clamped to [-1, 1] first, as a codec saturates at its overload point; it is not
    rescaled, so a quiet recording stays quiet and meets the codec's level-dependent step size.
    """
    codes = AF.mu_law_encoding(wav.clamp(-1.0, 1.0), MU_LAW_CHANNELS)
    return AF.mu_law_decoding(codes, MU_LAW_CHANNELS)


def telephone(wav: torch.Tensor, sample_rate: int, snr_db: float,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Simulate a narrowband telephone call heard at ``sample_rate``; the length is unchanged.

    Order of a real call: resample to 8 kHz (what the line carries, < 4 kHz), the 300-3400 Hz voice
    band, line and far-end noise (white, ``snr_db`` against the band-limited speech), the G.711 codec,
    then resampling back to ``sample_rate``. Everything happens at 8 kHz, so the output has no energy
    above 4 kHz, like real 8 kHz telephone recordings resampled to a wideband model's rate.
    """
    narrow = AF.resample(wav, orig_freq=sample_rate, new_freq=TELEPHONE_RATE)
    narrow = add_white_noise(telephone_bandpass(narrow, TELEPHONE_RATE), snr_db, generator)
    wide = AF.resample(mu_law_codec(narrow), orig_freq=TELEPHONE_RATE, new_freq=sample_rate)
    return torch.nn.functional.pad(wide, (0, max(0, wav.shape[-1] - wide.shape[-1])))[..., : wav.shape[-1]]


@dataclass(frozen=True)
class WaveformAugment:
    """Per-utterance random waveform augmentation: speed perturbation, then a telephone channel.

    Draws come from ``generator``, by default torch's global generator. In a DataLoader worker each batch
    first reseeds that generator with the batch's own seed (``sampling.SeedsEachBatch``), so the draws
    depend on the batch, not on the worker, and a seeded run repeats for any ``num_workers > 0``; with
    ``num_workers=0`` the draws advance the main process's generator.

    Args:
        sample_rate: rate of the waveforms (Hz); at least 8000 when ``telephone_prob > 0``.
        speed_perturb: speed factors, one drawn uniformly per utterance for the function ``speed_perturb``;
            empty: off.
        telephone_prob: probability that an utterance goes through ``telephone``.
        telephone_snr_db: (low, high) range of the uniformly drawn SNR of the telephone noise, in dB.
    """

    sample_rate: int
    speed_perturb: tuple[float, ...] = ()
    telephone_prob: float = 0.0
    telephone_snr_db: tuple[float, float] = (15.0, 35.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "speed_perturb", tuple(float(f) for f in self.speed_perturb))
        object.__setattr__(self, "telephone_snr_db", tuple(float(s) for s in self.telephone_snr_db))
        if not all(math.isfinite(f) and f > 0 for f in self.speed_perturb):
            raise ValueError(f"speed_perturb factors must be finite and > 0, got {self.speed_perturb}")
        if not 0.0 <= self.telephone_prob <= 1.0:
            raise ValueError(f"telephone_prob must be in [0, 1], got {self.telephone_prob}")
        if len(self.telephone_snr_db) != 2 or self.telephone_snr_db[0] > self.telephone_snr_db[1]:
            raise ValueError(f"telephone_snr_db must be (low, high) dB with low <= high, got {self.telephone_snr_db}")
        if self.telephone_prob > 0 and self.sample_rate < TELEPHONE_RATE:
            raise ValueError(f"telephone_prob > 0 needs sample_rate >= {TELEPHONE_RATE}, got {self.sample_rate}")

    def __call__(self, wav: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment one waveform (N,): a random speed factor, then the telephone channel with its probability."""
        if self.speed_perturb:
            pick = int(torch.randint(len(self.speed_perturb), (), generator=generator))
            wav = speed_perturb(wav, self.sample_rate, self.speed_perturb[pick])
        if self.telephone_prob > 0 and float(torch.rand((), generator=generator)) < self.telephone_prob:
            low, high = self.telephone_snr_db
            snr_db = low + (high - low) * float(torch.rand((), generator=generator))
            wav = telephone(wav, self.sample_rate, snr_db, generator)
        return wav
