"""compute_dtype: the one cast of a mixer's input under autocast."""
import torch
import torch.nn as nn

from infomamba.layers.precision import compute_dtype


def test_casts_to_the_autocast_dtype_only_under_autocast():
    x = torch.randn(2, 3)
    assert compute_dtype(x) is x
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compute_dtype(x).dtype == torch.bfloat16
    assert compute_dtype(torch.ones(2, dtype=torch.long)).dtype == torch.long
    meta = torch.empty(2, 3, device="meta")  # no autocast on this device (infomamba summary counts on it)
    assert compute_dtype(meta) is meta


def test_two_projections_of_one_input_save_one_copy():
    """Autocast would give each Linear its own bf16 copy of an fp32 input to save for backward."""
    a, b = nn.Linear(8, 8), nn.Linear(8, 8)
    x = torch.randn(4, 8, requires_grad=True) * 2.0  # not a leaf: autocast caches casts of leaves only

    def saved_storages(prepare):
        seen = set()

        def pack(t):
            if t.shape == (4, 8):
                seen.add(t.untyped_storage().data_ptr())
            return t

        with torch.autocast("cpu", dtype=torch.bfloat16), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            h = prepare(x)
            a(h) + b(h)
        return len(seen)

    assert saved_storages(lambda t: t) == 2
    assert saved_storages(compute_dtype) == 1
