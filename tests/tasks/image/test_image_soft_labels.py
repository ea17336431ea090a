"""MixUp and CutMix give every training batch soft labels, on which Eq. 12's InfoNCE terms are not formed: the paper's
ImageNet and Food-101 recipes (both on) had trained InfoMamba without them, and nothing said so."""
import pytest
import torch

from infomamba.losses import LossWeights, auxiliary_losses
from infomamba.mixers import MixerAux
from infomamba.tasks.image.module import soft_label_note

MIXED = {"mixup_alpha": 0.8, "cutmix_alpha": 1.0}


def test_the_terms_the_note_speaks_of_are_left_out_of_soft_label_batches():
    aux = [MixerAux(h_pool=torch.randn(4, 8), r_pool=torch.randn(4, 8))]
    hard, soft = torch.tensor([0, 1, 0, 1]), torch.tensor([[0.3, 0.7]] * 4)
    assert {"nce_h", "nce_r"} <= set(auxiliary_losses(aux, hard, LossWeights()))
    assert not {"nce_h", "nce_r"} & set(auxiliary_losses(aux, soft, LossWeights()))


def test_a_mixing_fit_of_infomamba_gets_the_note_naming_what_mixes():
    note = soft_label_note("infomamba", LossWeights(beta=0.1), MIXED)
    assert note.startswith("[infomamba] note: with data.mixup_alpha=0.8, data.cutmix_alpha=1.0 every training batch")
    assert "loss.beta=0.1" in note and "trains them on no batch" in note and "\n" not in note
    assert "data.cutmix_alpha=1.0 every" in soft_label_note("infomamba", LossWeights(), {"cutmix_alpha": 1.0})


@pytest.mark.parametrize("mixer, loss, data", [
    ("infomamba", LossWeights(), {"mixup_alpha": 0.0, "cutmix_alpha": 0.0}),  # hard labels: the terms train
    ("infomamba", LossWeights(), {}),                                         # a data module without the options
    ("infomamba", LossWeights(beta=0.0), MIXED),                              # no InfoNCE weight to lose
    ("infomamba", LossWeights(use_nce=False), MIXED),
    ("attention", LossWeights(), MIXED)])                                     # reports no streams
def test_no_note_where_nothing_is_lost(mixer, loss, data):
    assert soft_label_note(mixer, loss, data) is None
