"""Numerical ops with a Triton kernel, one folder per op: `reference.py` (exact PyTorch: the CPU path
and the oracle), `triton.py` (kernels + autograd) and `__init__.py` (the dispatched entry point).
`dispatch.py` decides which path runs and says so once."""
