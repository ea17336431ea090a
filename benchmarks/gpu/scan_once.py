"""Launch the scan's forward and backward kernels once per shape, as the fused SSM op does (dt before
softplus, bf16, d 768, n 16), for a profiler to read: `ncu --kernel-name regex:_scan_ ... python3 THIS`.
Autotuning is off (each kernel's first candidate) so that the profiled launches are the only ones."""
import os
import sys

os.environ.setdefault("INFOMAMBA_SCAN_AUTOTUNE", "0")
import torch  # noqa: E402

from infomamba.ops.selective_scan import triton as ss  # noqa: E402

shapes = [tuple(int(v) for v in s.split("x")) for s in sys.argv[1:]] or [(64, 196), (8, 16384)]
for batch, length in shapes:
    d, n = 768, 16
    g = torch.Generator(device="cuda").manual_seed(0)
    u = torch.randn(batch, length, d, device="cuda", generator=g).bfloat16()
    dt_pre = (torch.randn(batch, length, d, device="cuda", generator=g) - 2.0).bfloat16()
    At = (-torch.exp(0.5 * torch.randn(d, n, device="cuda", generator=g))).t().contiguous()
    B, C = (torch.randn(batch, length, n, device="cuda", generator=g).bfloat16() for _ in range(2))
    D = torch.randn(d, device="cuda", generator=g)
    dy = torch.randn_like(u)
    y = ss._forward(u, dt_pre, At, B, C, D, False, dt_softplus=True)
    grads = ss._backward(u, dt_pre, At, B, C, D, dy, False, dt_softplus=True)
    torch.cuda.synchronize()
    fwd, bwd = (ss.candidate_configs(kind, n)[0] for kind in ("fwd", "bwd"))
    print(f"B{batch} L{length}: fwd cfg {fwd}, bwd cfg {bwd}")
