"""Conv2d subsampling of log-mel frames (x4 or x8 in time), as in Conformer / ESPnet front ends."""
from __future__ import annotations

import torch
import torch.nn as nn


def conv_out_length(lengths: torch.Tensor, layers: int) -> torch.Tensor:
    """Frames after `layers` convs of kernel 3, stride 2, padding 1: L -> floor((L - 1) / 2) + 1 each."""
    for _ in range(layers):
        lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
    return lengths


class ConvSubsampling(nn.Module):
    """(B, T, n_mels) -> (B, T / factor, dim) with the output lengths; padded frames stay zero.

    Each conv looks one frame ahead, so a causal encoder behind it has a lookahead of
    (factor - 1) frames (40 ms at x4): the usual streaming front end.
    """

    def __init__(self, n_mels: int, dim: int, factor: int = 4, channels: int = 64):
        super().__init__()
        if factor not in (4, 8):
            raise ValueError(f"subsampling factor must be 4 or 8, got {factor}")
        self.layers = {4: 2, 8: 3}[factor]
        convs, in_ch, freq = [], 1, n_mels
        for _ in range(self.layers):
            convs += [nn.Conv2d(in_ch, channels, 3, stride=2, padding=1), nn.SiLU()]
            in_ch, freq = channels, (freq - 1) // 2 + 1
        self.convs = nn.Sequential(*convs)
        self.proj = nn.Linear(channels * freq, dim)

    def forward(self, features: torch.Tensor, lengths: torch.Tensor):
        x = features
        for i in range(0, len(self.convs), 2):
            x = self.convs[i + 1](self.convs[i](x.unsqueeze(1) if x.dim() == 3 else x))
            valid = torch.arange(x.shape[2], device=x.device) < conv_out_length(lengths, i // 2 + 1)[:, None]
            x = x * valid[:, None, :, None]
        out_lengths = conv_out_length(lengths, self.layers)
        B, C, T, F = x.shape
        return self.proj(x.permute(0, 2, 1, 3).reshape(B, T, C * F)), out_lengths
