"""Triton kernels (installed as infomamba.kernels), each with its autograd.Function and tested against
the PyTorch reference it replaces: selective_scan (the Mamba-1 selective scan of infomamba.scan),
concept_assign (Eq. 7 assignment with the entropy-budgeted top-q of infomamba.concepts.sparse_assign)
and causal_conv (the SSM's depthwise conv + SiLU of infomamba.ssm.causal_conv_silu)."""
