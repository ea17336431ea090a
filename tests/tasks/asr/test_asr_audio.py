"""Audio reading (formats, rates, resampling, errors), log-mel features and SpecAugment."""

import math

import numpy as np
import pytest
import soundfile
import torch

from infomamba.tasks.asr.audio import AudioError, LogMel, SpecAugment, audio_duration, load_audio

SUBTYPES = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS"}


def tone(sr: int, seconds: float, channels: int = 1, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    """Sine + a little noise, (N,) or (N, channels) float32."""
    t = np.arange(round(sr * seconds)) / sr
    rng = np.random.default_rng(seed)
    wave = 0.4 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    wave = wave.astype(np.float32)
    return wave if channels == 1 else np.stack([wave] * channels, axis=1)


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg"])
@pytest.mark.parametrize("sr", [8000, 16000, 22050])
def test_load_audio_formats_and_resampled_length(tmp_path, ext, sr):
    path = tmp_path / f"tone.{ext}"
    data = tone(sr, 0.73)
    soundfile.write(path, data, sr, subtype=SUBTYPES[ext])
    assert audio_duration(path) == pytest.approx(data.shape[0] / sr)
    wav = load_audio(path, target_sr=16000)
    assert wav.dtype == torch.float32 and wav.dim() == 1
    assert wav.numel() == math.ceil(data.shape[0] * 16000 / sr)
    reference = torch.from_numpy(tone(16000, 0.73))[: wav.numel()]
    core = slice(800, wav.numel() - 800)  # away from the resampler's edges and codec priming
    corr = torch.corrcoef(torch.stack([wav[core], reference[core]]))[0, 1]
    assert corr > (0.9 if ext != "ogg" else 0.5), f"waveform not preserved (corr {corr:.2f})"


def test_load_audio_to_other_target_rate(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(path, tone(16000, 1.0), 16000)
    assert load_audio(path, target_sr=8000).numel() == 8000


def test_load_audio_mixes_channels_to_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    left = tone(16000, 0.5)
    soundfile.write(path, np.stack([left, np.zeros_like(left)], axis=1), 16000, subtype="FLOAT")
    wav = load_audio(path)
    assert wav.shape == (8000,)
    assert torch.allclose(wav, torch.from_numpy(left) / 2, atol=1e-6)


def test_corrupt_and_empty_files_raise_audio_error_with_path(tmp_path):
    good = tmp_path / "good.flac"
    soundfile.write(good, tone(16000, 1.0), 16000)
    cases = {
        "junk.flac": b"this is not audio" * 20,
        "empty.wav": b"",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "truncated.flac").write_bytes(good.read_bytes()[:300])  # header intact, frames gone
    soundfile.write(tmp_path / "zero.wav", np.zeros(0, dtype=np.float32), 16000)
    soundfile.write(tmp_path / "nan.wav", np.full(100, np.nan, dtype=np.float32), 16000, subtype="FLOAT")
    for name in ["junk.flac", "empty.wav", "truncated.flac", "zero.wav", "nan.wav", "missing.ogg"]:
        path = tmp_path / name
        with pytest.raises(AudioError, match=name) as info:
            load_audio(path)
        assert info.value.path == str(path)
    for name in ["junk.flac", "empty.wav", "zero.wav", "missing.ogg"]:
        with pytest.raises(AudioError, match=name):
            audio_duration(tmp_path / name)
    assert audio_duration(tmp_path / "truncated.flac") == pytest.approx(1.0)  # only decoding finds it


def test_logmel_shape_and_per_utterance_normalisation():
    mel = LogMel()
    assert (mel.n_fft, mel.hop_length) == (512, 160)
    wav = torch.from_numpy(tone(16000, 1.234))
    feats = mel(wav)
    assert feats.shape == (mel.num_frames(wav.numel()), 80) == (1 + wav.numel() // 160, 80)
    assert torch.isfinite(feats).all()
    assert torch.allclose(feats.mean(0), torch.zeros(80), atol=1e-4)
    assert torch.allclose(feats.std(0, unbiased=False), torch.ones(80), atol=1e-2)
    batch = mel(torch.stack([wav, 0.5 * wav]))
    assert batch.shape == (2, feats.shape[0], 80)
    assert torch.allclose(batch[0], feats, atol=1e-5)
    assert torch.allclose(batch[1], feats, atol=1e-3)  # gain-invariant after normalisation


def test_logmel_floor_keeps_silence_finite_and_rejects_tiny_input():
    raw = LogMel(normalize=False)
    silent = raw(torch.zeros(4000))
    assert torch.allclose(silent, torch.full_like(silent, math.log(1e-10)))
    assert torch.isfinite(LogMel()(torch.zeros(4000))).all()
    with pytest.raises(ValueError, match="shorter"):
        raw(torch.zeros(raw.min_samples - 1))


def test_logmel_other_rate_and_bins():
    mel = LogMel(sample_rate=8000, n_mels=40)
    assert (mel.n_fft, mel.hop_length) == (256, 80)
    assert mel(torch.from_numpy(tone(8000, 0.5, freq=300.0))).shape == (51, 40)


def _padded_batch(lengths, feat_dim=80, pad_value=7.0):
    feats = torch.full((len(lengths), max(lengths), feat_dim), pad_value)
    for b, n in enumerate(lengths):
        feats[b, :n] = torch.randn(n, feat_dim) + 3.0  # never exactly 0 before masking
    return feats, torch.tensor(lengths)


def test_specaugment_masks_only_real_frames_in_training():
    torch.manual_seed(0)
    aug = SpecAugment(freq_masks=2, freq_mask_width=20, time_masks=3, time_mask_width=30, time_mask_max_ratio=0.3)
    feats, lengths = _padded_batch([200, 120, 40])
    aug.train()
    out = aug(feats, lengths)
    assert out.shape == feats.shape and not torch.equal(out, feats)
    assert torch.equal(feats[:, :, 0][feats[:, :, 0] == 7.0], out[:, :, 0][feats[:, :, 0] == 7.0])
    for b, n in enumerate(lengths.tolist()):
        assert (out[b, n:] == 7.0).all(), "a mask landed in padding"
        real = out[b, :n]
        masked_bins = (real == 0).all(dim=0).sum()
        masked_frames = (real == 0).all(dim=1).sum()
        assert masked_bins <= 2 * 19
        assert masked_frames <= 3 * min(29, int(0.3 * n))
        changed = real != feats[b, :n]
        assert torch.equal(changed, real == 0)  # masked values are 0, nothing else changes


def test_specaugment_identity_in_eval_and_with_zero_masks():
    feats, lengths = _padded_batch([50, 30])
    aug = SpecAugment().eval()
    assert aug(feats, lengths) is feats
    off = SpecAugment(freq_masks=0, time_masks=0).train()
    assert off(feats, lengths) is feats
    with pytest.raises(ValueError):
        SpecAugment(time_mask_max_ratio=0.0)
