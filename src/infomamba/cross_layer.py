"""SparX sparse cross-layer connections around any block stack (SparX, Lou et al., Sec. 3).

Connection rules ("Sparse Ganglion Layers", "Cross-layer Sliding Window"):
- block i (0-based) is a ganglion layer when (i + 1) % stride == 0 (the paper's example: 8 layers,
  S = 2 -> ganglion layers 2, 4, 6, 8), every other block is a normal layer and runs untouched;
- a ganglion layer connects to the normal layers since the previous ganglion layer
  (intra-connections) and to the `window` (M) closest preceding ganglion layers (inter-connections).
  The stack input counts as the first ganglion output: the paper's first ganglion layer of a stage
  reads the previous stage's final feature, and our encoder is one stage behind the frontend.

A ganglion layer runs the Dynamic Multi-layer Channel Aggregator (DMCA, Eq. 1) on its input X and
the connected outputs Y_1..Y_n, then its block:

    Y_k, Y_v = Split(W_1 Cat(Y_1, .., Y_n))                  (n D -> 2 D)
    Q = W_2 X,  K = W_3 Y_k,  V = W_4 Y_v                    (grouped: G groups of D / G channels)
    Z = Softmax(Q K^T / sqrt(N)) V                           (per group, Q, K, V are D/G x N: channel attention)
    X' = W_5 Cat(X, Y_v, Z)                                  (3 D -> D)

Gaps filled: the spatial reducers R_1, R_2 are the identity: the paper sets N / r to the token
count of the final stage, which in a one-stage encoder is N itself (r = 1). The paper's W_5 outputs
2C for its ganglion blocks; our blocks keep width D, so W_5 outputs D, and it starts as [I 0 0]
(the paper gives no initialisation) so the stack starts as the plain stack. The 1 / sqrt(N) sits
inside the softmax, as a temperature. SparX's DPE belongs to its block design, not to the
connections, and is left out: the block is the backbone's, identical across mixers.

Padding: Q and K are zero at padded tokens, N counts each sample's real tokens, and the output is
zero at padding, so padded tokens never reach real ones. Causal (`causal=True`): the channel
attention of token t uses sum_{s <= t} Q_s K_s^T / sqrt(N_t), N_t the real tokens <= t (our causal
reading; memory B L G (D / G)^2); every other DMCA step is per token.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .layers.pooling import zero_padding

STACK_INPUT = -1


class DMCA(nn.Module):
    """Dynamic Multi-layer Channel Aggregator (SparX Eq. 1) over `n_inputs` earlier outputs."""

    def __init__(self, dim: int, n_inputs: int, groups: int, causal: bool):
        super().__init__()
        self.groups = groups
        self.causal = causal
        self.w1 = nn.Linear(n_inputs * dim, 2 * dim)
        self.w2 = nn.Linear(dim, dim)
        self.w3 = nn.Linear(dim, dim)
        self.w4 = nn.Linear(dim, dim)
        self.w5 = nn.Linear(3 * dim, dim)
        with torch.no_grad():
            self.w5.weight.zero_()
            self.w5.weight[:, :dim].copy_(torch.eye(dim))
            self.w5.bias.zero_()

    def forward(self, x: torch.Tensor, inputs: list[torch.Tensor], padding_mask: torch.Tensor | None) -> torch.Tensor:
        B, L, D = x.shape
        yk, yv = self.w1(torch.cat(inputs, dim=-1)).chunk(2, dim=-1)
        q = zero_padding(self.w2(x), padding_mask).view(B, L, self.groups, -1)
        k = zero_padding(self.w3(yk), padding_mask).view(B, L, self.groups, -1)
        v = self.w4(yv).view(B, L, self.groups, -1)
        real = torch.ones(B, L, device=x.device) if padding_mask is None else (~padding_mask).to(x.dtype)
        if self.causal:
            count = real.cumsum(1).clamp_min(1.0)[:, :, None, None, None]
            scores = torch.einsum("blgi,blgj->blgij", q, k).cumsum(1) / count.sqrt()
            z = torch.einsum("blgij,blgj->blgi", scores.softmax(-1), v)
        else:
            count = real.sum(1).clamp_min(1.0)[:, None, None, None]
            scores = torch.einsum("blgi,blgj->bgij", q, k) / count.sqrt()
            z = torch.einsum("bgij,blgj->blgi", scores.softmax(-1), v)
        out = self.w5(torch.cat([x, yv, z.reshape(B, L, D)], dim=-1))
        return zero_padding(out, padding_mask)


SPARX_OPTIONS = ("stride", "window", "groups", "causal")  # encoder.cross_layer_options (causal: encoder.causal)


class SparXStack(nn.Module):
    """Blocks with SparX connections: `stack(x, padding_mask, grid) -> (x, [aux of every block])`.

    Args:
        blocks: the encoder blocks.  dim: token width.
        stride: S, one plus the number of normal layers between two ganglion layers.
        window: M, preceding ganglion outputs each ganglion layer reads.
        groups: G, channel groups of the DMCA attention (paper: 4).
        causal: causal DMCA; required when the blocks are causal.
    """

    def __init__(self, blocks: nn.ModuleList, dim: int, stride: int = 2, window: int = 2, groups: int = 4,
                 causal: bool = False):
        super().__init__()
        sizes = {"stride": stride, "window": window, "groups": groups}
        bad = {k: v for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, int) or v < 1}
        if bad:
            raise ValueError(f"sparx stride, window and groups must be ints >= 1, got {bad}")
        if dim % groups:
            raise ValueError(f"sparx groups={groups} must divide dim={dim}")
        if stride > len(blocks):
            raise ValueError(f"sparx stride={stride} is more than depth={len(blocks)}: no block would be a ganglion "
                             "layer, and the stack would have no connection; set stride <= depth")
        if not causal and any(block.mixer.causal for block in blocks):
            raise ValueError("causal blocks need a causal SparX aggregator: set cross_layer_options.causal=true")
        self.blocks = blocks
        self.sources = self.connections(len(blocks), stride, window)
        self.aggregators = nn.ModuleDict({str(i): DMCA(dim, len(sources), groups, causal)
                                          for i, sources in self.sources.items()})

    @staticmethod
    def connections(depth: int, stride: int, window: int) -> dict[int, tuple[int, ...]]:
        """{ganglion block: the outputs it reads}, STACK_INPUT (-1) standing for the stack input."""
        sources = {}
        ganglia = [STACK_INPUT]
        for i in range(depth):
            if (i + 1) % stride == 0:
                normal = tuple(range(ganglia[-1] + 1, i))
                sources[i] = tuple(ganglia[-window:]) + normal
                ganglia.append(i)
        return sources

    def forward(self, x, padding_mask=None, grid=None):
        outputs = {STACK_INPUT: x}
        auxes = []
        for i, block in enumerate(self.blocks):
            if i in self.sources:
                x = self.aggregators[str(i)](x, [outputs[j] for j in self.sources[i]], padding_mask)
            x, aux = block(x, padding_mask, grid)
            outputs[i] = x
            auxes.append(aux)
        return x, auxes
