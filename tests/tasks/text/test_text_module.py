import pytest
import torch

from infomamba import EncoderConfig
from infomamba.tasks.text.module import TextClassifier, drop_tokens


def test_drop_tokens_zeroes_whole_tokens_at_rate_p_and_leaves_the_rest_unscaled():
    torch.manual_seed(0)
    x = torch.randn(4, 2000, 8)
    out = drop_tokens(x, 0.3)
    dropped = (out == 0).all(-1)
    assert abs(dropped.float().mean().item() - 0.3) < 0.02
    assert torch.equal(out[~dropped], x[~dropped])
    assert drop_tokens(x, 0.0) is x


def _pair(p: float):
    torch.manual_seed(0)
    plain = TextClassifier(num_classes=2, vocab_size=50, encoder=EncoderConfig(dim=16, depth=1))
    dropping = TextClassifier(num_classes=2, vocab_size=50, encoder=EncoderConfig(dim=16, depth=1), token_dropout=p)
    dropping.load_state_dict(plain.state_dict())
    return plain, dropping


def test_token_dropout_acts_in_training_only():
    plain, dropping = _pair(0.5)
    ids = torch.randint(1, 50, (3, 12))
    mask = torch.zeros(3, 12, dtype=torch.bool)
    for model in (plain, dropping):
        model.eval()
    assert torch.equal(plain(ids, mask)[0], dropping(ids, mask)[0])
    outs = []
    for model in (plain, dropping):
        model.train()
        torch.manual_seed(1)
        outs.append(model(ids, mask)[0])
    assert not torch.allclose(*outs)


def test_token_dropout_out_of_range_is_refused():
    with pytest.raises(ValueError, match="token_dropout"):
        TextClassifier(num_classes=2, vocab_size=50, token_dropout=1.0)
