"""Kernel launches of a training step, device-independent: the ops one encoder block dispatches in a
bf16-autocast forward and its backward, per mixer, counted on fake tensors (FakeTensorMode: no data, no kernel
run) with INFOMAMBA_KERNELS=triton. The fused SSM ops (`infomamba::ssm_inner`, `infomamba::ssm_inner_pair` and
their backwards) are counted from inside: their eager glue op by op, their launchers' own included, each Triton
kernel once (stubbed: nothing runs); other custom ops (the concept assignment) count once. Views, aliases,
allocations and metadata queries launch nothing and are not counted. At 224 px the eager step is launch-bound
(docs/benchmarks.md: the GPU idles most of an InfoMamba step), so this count is what the eager step time follows
there; under torch.compile the fused op's glue stays eager (a custom op is opaque to Inductor).

    python benchmarks/op_count.py --mixers infomamba mamba attention
    python benchmarks/op_count.py --mixers 'infomamba{ssm_heads: 12}' --by-line   # the SSD form, op by source line
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import os
import traceback
from unittest import mock

import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

import infomamba
from infomamba import Encoder, EncoderConfig
from infomamba.bench import parse_mixer_entry
from infomamba.losses import LossWeights, total_loss
from infomamba.mixers import MixerAux
from infomamba.summary import SIZE_MATCHED, size_matched_options

NO_LAUNCH = {"detach", "view", "_unsafe_view", "t", "expand", "unsqueeze", "slice", "split", "split_with_sizes",
             "transpose", "permute", "select", "squeeze", "alias", "reshape", "as_strided", "unbind", "narrow",
             "_reshape_alias", "empty", "empty_like", "empty_strided", "new_empty", "device", "promote_types",
             "scalar_tensor"}


PACKAGE = os.path.dirname(os.path.abspath(infomamba.__file__)) + os.sep


def source_site(skip: tuple[str, ...] = ()) -> str:
    """The innermost line of the infomamba package on the stack, as its folder, file and line
    ("ssm_inner/triton.py:208": every op folder has a triton.py), frames of the functions named in `skip` left out;
    "autograd" when there is none (the engine's own work)."""
    frames = [f for f in traceback.extract_stack() if f.filename.startswith(PACKAGE) and f.name not in skip]
    if not frames:
        return "autograd"
    path = frames[-1].filename
    return f"{os.path.join(os.path.basename(os.path.dirname(path)), os.path.basename(path))}:{frames[-1].lineno}"


class _Counter(TorchDispatchMode):
    """Counts dispatched ops that launch work, by phase and by source line of infomamba."""

    def __init__(self):
        super().__init__()
        self.phase = "forward"
        self.counts: collections.Counter = collections.Counter()
        self.fused_calls: list = []

    def count(self, name: str) -> None:
        self.counts[(self.phase, source_site(), name)] += 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.__name__.split(".")[0]
        if func.namespace == "infomamba" and name in FUSED_SSM:
            self.fused_calls.append((self.phase, name, args, kwargs or {}))  # counted from inside: `replay_fused`
        elif name not in NO_LAUNCH and func.namespace != "prim":
            self.count(name)
        return func(*args, **(kwargs or {}))

    def replay_fused(self) -> None:
        """Count the fused SSM op's calls from inside: each implementation again on its recorded (fake) inputs,
        at the top level (a call from inside __torch_dispatch__ would run below autograd, where composite ops
        such as matmul or .to reach the mode undecomposed and would be miscounted)."""
        from infomamba.ops.ssm_inner import triton as inner

        calls, self.fused_calls = self.fused_calls, []
        for phase, name, args, kwargs in calls:
            self.phase = phase
            with self:
                getattr(inner, FUSED_SSM[name])._init_fn(*args, **kwargs)


SSD_KERNELS = ("_ssd_fwd_kernel", "_ssd_bwd_walks_kernel", "_ssd_bwd_chunk_kernel")  # the SSD form's launches
FUSED_SSM = {"ssm_inner": "ssm_inner_op", "ssm_inner_backward": "ssm_inner_backward_op",  # op -> its object there
             "ssm_inner_pair": "ssm_inner_pair_op", "ssm_inner_pair_backward": "ssm_inner_pair_backward_op"}


@contextlib.contextmanager
def stubbed_ssm_kernels(counter: _Counter):
    """The fused SSM op's Triton kernels replaced by one counted launch each that runs nothing: the op's glue around
    them (allocations, the sums of partials, casts) runs, and is counted, on fake tensors. The Mamba-1 scan's
    autotuner takes its first candidate untimed (INFOMAMBA_SCAN_AUTOTUNE=0)."""
    from infomamba.ops.causal_conv import triton as conv
    from infomamba.ops.selective_scan import triton as scan
    from infomamba.ops.ssd_scan import triton as ssd
    from infomamba.ops.ssm_inner import triton as inner

    class Kernel:
        """A @triton.jit kernel's launch, `kernel[grid](...)`, counted and not run."""

        def __init__(self, name):
            self.name = name

        def __getitem__(self, grid):
            return lambda *args, **kwargs: counter.count(self.name)

    def stubs(module, names):
        return mock.patch.multiple(module, **{k: Kernel(k.strip("_")) for k in names})

    with mock.patch.dict(os.environ, {"INFOMAMBA_SCAN_AUTOTUNE": "0"}), \
            stubs(conv, ("_conv_fwd_kernel", "_conv_bwd_kernel")), \
            stubs(scan, ("_scan_fwd_kernel", "_scan_bwd_kernel")), stubs(inner, ("_injection_bwd_kernel",)), \
            stubs(ssd, SSD_KERNELS):
        yield


def block_ops(mixer: str, dim: int, options: dict, batch: int = 2, length: int = 196) -> collections.Counter:
    """(phase, source line, op) -> count for one training step of a one-block encoder (the Triton path's ops,
    whatever INFOMAMBA_KERNELS says outside this call)."""
    enc = Encoder(EncoderConfig(dim=dim, depth=1, mixer=mixer, mixer_options=options)).train()
    counter = _Counter()
    with mock.patch.dict(os.environ, {"INFOMAMBA_KERNELS": "triton"}), FakeTensorMode(allow_non_fake_inputs=True), \
            stubbed_ssm_kernels(counter):
        x = torch.randn(batch, length, dim, requires_grad=True)
        with counter:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = enc(x).hidden.float().square().mean()
            counter.phase = "backward"
            loss.backward()
        counter.replay_fused()
    return counter.counts


def auxiliary_ops(depth: int, batch: int, width: int) -> tuple[int, int]:
    """(forward, backward) ops of Eq. 14's auxiliary terms over `depth` InfoMamba layers' pooled streams (batch,
    width): Eq. 12 on h and r and Eq. 13, each layer's Eq. 8 term given; backward to the streams."""
    torch.manual_seed(0)
    streams = [torch.randn(batch, width, requires_grad=True) for _ in range(2 * depth)]
    aux = [MixerAux(h_pool=h, r_pool=r, mi_hash=torch.rand(())) for h, r in zip(streams[::2], streams[1::2])]
    counter = _Counter()
    with counter:
        loss = total_loss(torch.zeros(()), aux, torch.arange(batch) % 10, LossWeights())["loss"]
        counter.phase = "backward"
        torch.autograd.grad(loss, streams)
    return tuple(sum(v for (p, _, _), v in counter.counts.items() if p == phase) for phase in ("forward", "backward"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mixers", nargs="+", default=["infomamba", "mamba", "attention"],
                   help="mixer names or NAME{yaml} entries, as `infomamba bench --mixers`")
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--depth", type=int, default=12, help="with --dim, picks the size-matched options")
    p.add_argument("--tokens", type=int, default=196)
    p.add_argument("--size-matched", default=str(SIZE_MATCHED))
    p.add_argument("--by-line", action="store_true", help="also list the ops by source line (forward, backward)")
    p.add_argument("--aux-loss", action="store_true",
                   help="also count Eq. 14's auxiliary terms over --depth layers (batch 64, the scanned width 2 dim)")
    args = p.parse_args(argv)
    matched = size_matched_options(args.size_matched, args.dim, args.depth)
    print("| mixer | forward ops / block | backward ops / block | per step at depth |\n|---|---|---|---|")
    for mixer, name, options in map(parse_mixer_entry, args.mixers):
        counts = block_ops(name, args.dim, {**matched.get(name, {}), **options}, length=args.tokens)
        fwd = sum(v for (phase, _, _), v in counts.items() if phase == "forward")
        bwd = sum(v for (phase, _, _), v in counts.items() if phase == "backward")
        print(f"| {mixer} | {fwd} | {bwd} | {(fwd + bwd) * args.depth:,} |", flush=True)
        if args.by_line:
            lines = collections.defaultdict(collections.Counter)
            for (phase, where, op), v in counts.items():
                lines[where][phase] += v
                lines[where][op] += v
            for where, c in sorted(lines.items(), key=lambda kv: -kv[1]["forward"] - kv[1]["backward"]):
                ops = ", ".join(f"{op} {v}" for op, v in c.items() if op not in ("forward", "backward"))
                print(f"    {c['forward']:4d} fwd {c['backward']:4d} bwd  {where}  ({ops})")
    if args.aux_loss:
        fwd, bwd = auxiliary_ops(args.depth, 64, 2 * args.dim)
        print(f"Eq. 14's auxiliary terms (Eq. 12 on h and r, Eq. 13) over {args.depth} layers: {fwd} forward, "
              f"{bwd} backward, {fwd + bwd:,} a step")


if __name__ == "__main__":
    main()
