"""Audio input for ASR: reading (soundfile + torchaudio resampling), log-mel features, SpecAugment.

Files are read with ``soundfile`` (libsndfile: WAV, FLAC, Ogg Vorbis and Opus, MP3 from libsndfile 1.1), never
``torchaudio.load``, whose backends vary between installs. Any failure to read a file becomes ``AudioError`` with
the path. ``AUDIO_EXTENSIONS`` are the extensions (any case) taken for audio files in folders and lists.
"""

from __future__ import annotations

import io
import os

import soundfile
import numpy as np
import torch
import torchaudio
from torch import nn

AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".opus", ".mp3")
AudioSource = str | os.PathLike | io.IOBase


class AudioError(RuntimeError):
    """An audio file could not be used: unreadable, corrupt, empty or non-finite. ``path`` names it."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot use audio {self.path}: {reason}")


def source_name(source: AudioSource) -> str:
    """The path of a file source, or an open file's name, for messages."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", source))


def unreadable(source: AudioSource, err: Exception) -> AudioError:
    """``err``, raised reading ``source``, as an ``AudioError`` that names the file once (libsndfile's own message
    starts by naming it again)."""
    detail = err.error_string if isinstance(err, soundfile.LibsndfileError) else err
    return AudioError(source_name(source), f"{type(err).__name__}: {detail}")


def _check_exists(source: AudioSource) -> None:
    if isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
        raise AudioError(source, "file not found")


def audio_duration(source: AudioSource) -> float:
    """Duration in seconds from the file header only (``soundfile.info``, cheap).

    Raises ``AudioError`` for a missing, unreadable or empty (zero frames) file.
    """
    _check_exists(source)
    try:
        info = soundfile.info(source)
    except Exception as err:  # libsndfile raises several types (LibsndfileError, RuntimeError, OSError)
        raise unreadable(source, err) from err
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(source_name(source), "empty audio (0 frames)")
    return info.frames / info.samplerate


def load_audio(source: AudioSource, target_sr: int = 16000) -> torch.Tensor:
    """Read ``source`` as a mono float32 waveform (N,) at ``target_sr``.

    Channels are averaged; a different file rate is resampled with
    ``torchaudio.functional.resample`` (band-limited sinc), giving ``ceil(N * target_sr / sr)`` samples.
    Raises ``AudioError`` (with the path) for a missing, corrupt, empty or non-finite file.
    """
    _check_exists(source)
    try:
        data, sr = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as err:  # libsndfile raises several types (LibsndfileError, RuntimeError, OSError)
        raise unreadable(source, err) from err
    if data.shape[0] == 0:
        raise AudioError(source_name(source), "empty audio (0 frames)")
    wav = torch.from_numpy(data).mean(dim=1)
    if not torch.isfinite(wav).all():
        raise AudioError(source_name(source), "non-finite samples")
    if sr != target_sr:
        wav = torchaudio.functional.resample(wav, orig_freq=sr, new_freq=target_sr)
    return wav


def waveform_input(samples: torch.Tensor | np.ndarray, sample_rate: int, target_sr: int, label: str) -> torch.Tensor:
    """An in-memory waveform as `load_audio` gives a file's: mono float32 (N,) at ``target_sr``, resampled from
    ``sample_rate``. Floating samples only (integer PCM has no agreed scale: give ``x / 32768`` for int16), 1-D,
    finite; anything else is a ValueError naming ``label`` (which input it is)."""
    wav = torch.as_tensor(samples, device="cpu")
    if not wav.is_floating_point():
        raise ValueError(f"{label}: {wav.dtype} samples; give float samples in [-1, 1] (int16 PCM: x / 32768)")
    if wav.dim() != 1:
        raise ValueError(f"{label}: a waveform must be 1-D (mono samples), got shape {tuple(wav.shape)}")
    wav = wav.float()
    if wav.numel() == 0 or not torch.isfinite(wav).all():
        raise ValueError(f"{label}: {'no samples' if wav.numel() == 0 else 'non-finite samples'}")
    if sample_rate != target_sr:
        wav = torchaudio.functional.resample(wav, orig_freq=sample_rate, new_freq=target_sr)
    return wav


class LogMel(nn.Module):
    """Log-mel filterbank features with per-utterance mean/variance normalisation per mel bin.

    Power mel spectrogram (torchaudio ``MelSpectrogram``, Hann window of ``win_ms``, hop ``hop_ms``,
    ``n_fft`` = next power of two >= the window, centred frames), ``log(max(mel, floor))``, then each bin
    is shifted/scaled to zero mean and unit variance over the utterance's frames. Normalisation runs
    over every frame given, so call it on one unpadded utterance (the data module does, per item).

    Args:
        sample_rate: waveform rate in Hz.
        n_mels: mel bins.
        win_ms / hop_ms: analysis window and hop in milliseconds (25 / 10 -> 400 / 160 samples at 16 kHz).
        floor: smallest mel energy before the log (keeps digital silence finite).
        normalize: per-utterance mean/variance normalisation per bin.
        eps: added to the standard deviation.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 80,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        floor: float = 1e-10,
        normalize: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        win_length = round(sample_rate * win_ms / 1000)
        self.hop_length = round(sample_rate * hop_ms / 1000)
        self.n_fft = 1 << (win_length - 1).bit_length()
        self.n_mels = n_mels
        self.floor = floor
        self.normalize = normalize
        self.eps = eps
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=self.n_fft, win_length=win_length,
            hop_length=self.hop_length, n_mels=n_mels, power=2.0, center=True,
        )

    @property
    def min_samples(self) -> int:
        """Shortest waveform the centred (reflect-padded) STFT accepts."""
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for a waveform of ``num_samples`` samples."""
        return 1 + num_samples // self.hop_length

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        """(..., N) waveform -> (..., T, n_mels) features, T = ``num_frames(N)``."""
        if waveform.shape[-1] < self.min_samples:
            raise ValueError(f"waveform of {waveform.shape[-1]} samples is shorter than {self.min_samples}")
        feats = self.mel(waveform).clamp_min(self.floor).log().transpose(-1, -2)
        if self.normalize:
            mean = feats.mean(dim=-2, keepdim=True)
            std = feats.std(dim=-2, keepdim=True, unbiased=False)
            feats = (feats - mean) / (std + self.eps)
        return feats


class SpecAugment(nn.Module):
    """SpecAugment frequency and time masking on a padded batch, active only in training mode.

    Each utterance gets its own masks, drawn by torchaudio ``FrequencyMasking`` / ``TimeMasking``
    applied to its real frames ``features[b, :lengths[b]]`` only, so no time mask lands in (or is
    wasted on) padding, and the width limit ``time_mask_max_ratio`` is relative to the utterance's
    own length. Masked values are set to 0, the mean of the normalised features. In eval mode (and
    with zero masks) the input is returned unchanged.

    Args:
        freq_masks: number of frequency masks per utterance.
        freq_mask_width: maximum width of each frequency mask in mel bins (F in the paper).
        time_masks: number of time masks per utterance.
        time_mask_width: maximum width of each time mask in frames (T in the paper).
        time_mask_max_ratio: a time mask covers at most this fraction of the utterance's frames (p).
    """

    def __init__(
        self,
        freq_masks: int = 2,
        freq_mask_width: int = 27,
        time_masks: int = 2,
        time_mask_width: int = 40,
        time_mask_max_ratio: float = 0.2,
    ) -> None:
        super().__init__()
        if min(freq_masks, freq_mask_width, time_masks, time_mask_width) < 0:
            raise ValueError("SpecAugment mask counts and widths must be >= 0")
        if not 0.0 < time_mask_max_ratio <= 1.0:
            raise ValueError(f"time_mask_max_ratio must be in (0, 1], got {time_mask_max_ratio}")
        self.freq_masks = freq_masks
        self.time_masks = time_masks
        self.freq_mask = torchaudio.transforms.FrequencyMasking(freq_mask_width)
        self.time_mask = torchaudio.transforms.TimeMasking(time_mask_width, p=time_mask_max_ratio)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """features (B, T, F), lengths (B,) -> masked copy (B, T, F) in training, ``features`` in eval."""
        if not self.training or self.freq_masks + self.time_masks == 0:
            return features
        out = features.clone()
        for b, length in enumerate(lengths.tolist()):
            spec = out[b, :length].transpose(0, 1)  # (F, T_b), the layout torchaudio masks expect
            for _ in range(self.freq_masks):
                spec = self.freq_mask(spec)
            for _ in range(self.time_masks):
                spec = self.time_mask(spec)
            out[b, :length] = spec.transpose(0, 1)
        return out
