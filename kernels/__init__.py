"""Triton kernels (installed as infomamba.kernels), each with its autograd.Function and tested against
the PyTorch reference it replaces: selective_scan (the Mamba-1 selective scan of infomamba.scan)."""
