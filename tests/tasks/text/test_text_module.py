from types import SimpleNamespace

import pytest
import torch

from infomamba import EncoderConfig
from infomamba.tasks.base import RunRefused
from infomamba.tasks.prediction_writer import in_input_order
from infomamba.tasks.text.datamodule import TextDataModule
from infomamba.tasks.text.module import TextClassifier, bigram_ids, drop_tokens
from tiny_data import write_sentiment_csv


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


@pytest.mark.parametrize("option, value, expected", [
    ("max_positions", -1, "max_positions must be > 0, got -1"), ("max_positions", 0, "max_positions must be > 0"),
    ("head_dropout", 2.0, r"head_dropout must be in \[0, 1\), got 2.0")])
def test_a_size_or_rate_out_of_range_is_refused_naming_the_option(option, value, expected):
    """A negative max_positions had stopped the fit in torch.randn ("negative dimension -1: [-1, 32]"), a
    head_dropout of 2 with torch's message, which named no option."""
    with pytest.raises(ValueError, match=rf"^model: {expected}"):
        TextClassifier(num_classes=2, vocab_size=50, **{option: value})


def test_bigram_ids_hash_each_token_with_the_one_before():
    ids = torch.randint(1, 500, (4, 30))
    buckets = bigram_ids(ids, 0, 97)
    assert buckets.shape == ids.shape and buckets.min() >= 0 and buckets.max() < 97
    assert torch.equal(buckets, bigram_ids(ids.clone(), 0, 97))
    changed = ids.clone()
    changed[:, 10] = ids[:, 10] % 499 + 1  # another token at position 10: its pair and the next one's change
    moved = (bigram_ids(changed, 0, 1 << 20) != bigram_ids(ids, 0, 1 << 20)).nonzero()[:, 1].unique()
    assert moved.tolist() == [10, 11]
    first = torch.tensor([[5, 7]])
    assert bigram_ids(first, 3, 1 << 20)[0, 0] == bigram_ids(torch.tensor([[3, 5]]), 3, 1 << 20)[0, 1]


def test_bigram_embedding_starts_at_zero_and_learns_only_the_pairs_present():
    torch.manual_seed(0)
    plain = TextClassifier(num_classes=2, vocab_size=50, encoder=EncoderConfig(dim=16, depth=1))
    model = TextClassifier(num_classes=2, vocab_size=50, encoder=EncoderConfig(dim=16, depth=1), bigram_buckets=64)
    model.load_state_dict(plain.state_dict(), strict=False)
    ids = torch.randint(1, 50, (2, 9))
    ids[1, 6:] = 0  # padding
    mask = ids == 0
    plain.eval(), model.eval()
    assert torch.equal(plain(ids, mask)[0], model(ids, mask)[0])  # a zero bigram table: the unigram model
    model(ids, mask)[0].sum().backward()
    learned = model.bigrams.weight.grad.abs().sum(-1).nonzero().flatten()
    assert set(learned.tolist()) == set(bigram_ids(ids, 0, 64)[~mask].tolist())


def test_bigram_embedding_changes_the_output_and_ignores_padding():
    torch.manual_seed(0)
    model = TextClassifier(num_classes=2, vocab_size=50, encoder=EncoderConfig(dim=16, depth=1), bigram_buckets=64)
    torch.nn.init.normal_(model.bigrams.weight)
    model.eval()
    ids = torch.randint(1, 50, (1, 8))
    padded = torch.cat([ids, torch.zeros(1, 4, dtype=ids.dtype)], 1)
    logits = model(ids, ids == 0)[0]
    torch.testing.assert_close(model(padded, padded == 0)[0], logits)
    with torch.no_grad():
        model.bigrams.weight.zero_()
    assert not torch.allclose(model(ids, ids == 0)[0], logits)


def test_negative_bigram_buckets_are_refused():
    with pytest.raises(ValueError, match="bigram_buckets"):
        TextClassifier(num_classes=2, vocab_size=50, bigram_buckets=-1)


def test_predictions_carry_the_line_of_their_text_in_the_predict_file(tmp_path):
    """The writer's index counts the texts kept: without the line in each row, every skipped empty line shifted the
    index of the predictions after it."""
    write_sentiment_csv(tmp_path / "reviews")
    (tmp_path / "new.txt").write_text("\na great film\n\n  \nan awful dull film\n")
    dm = TextDataModule(root=str(tmp_path / "reviews"), tokenizer="bytes", predict_path=str(tmp_path / "new.txt"))
    dm.setup("predict")
    model = TextClassifier(num_classes=2, vocab_size=dm.vocab_size, encoder=EncoderConfig(dim=16, depth=1)).eval()
    loader = dm.predict_dataloader()
    positions = [i for batch in loader.batch_sampler for i in batch]
    with torch.no_grad():
        rows = [row for batch in loader for row in model.predict_step(batch, 0)]
    assert [(r["index"], r["text"]) for r in in_input_order(rows, positions)] == [(1, "a great film"),
                                                                                   (4, "an awful dull film")]


def test_a_fit_whose_texts_outgrow_the_position_table_is_refused_before_its_first_step():
    model = TextClassifier(num_classes=2, vocab_size=50, encoder=EncoderConfig(dim=16, depth=1), max_positions=8)
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(hparams={"max_length": 16}))
    with pytest.raises(RunRefused, match=r"data.max_length=16 exceeds model.max_positions=8"):
        model.on_fit_start()
    model._trainer.datamodule.hparams["max_length"] = 8
    model.on_fit_start()


def test_a_fit_whose_texts_outgrow_a_mixers_max_len_is_refused_before_its_first_step():
    """Linformer's E and F have max_len rows (`Mixer.max_len`): a longer data.max_length would stop the fit at its
    first long batch (in the sanity validation), deep in the mixer."""
    linformer = EncoderConfig(dim=16, depth=2, mixer="linformer", mixer_options={"max_len": 12, "proj_len": 4})
    model = TextClassifier(num_classes=2, vocab_size=50, encoder=linformer)
    model._trainer = SimpleNamespace(datamodule=SimpleNamespace(hparams={"max_length": 16}))
    assert model.encoder.longest_sequence() == 12
    with pytest.raises(RunRefused, match=r"^data.max_length=16 exceeds the linformer mixer's max_len=12: .* set "
                                         r"max_len >= data.max_length in model.encoder.mixer_options"):
        model.on_fit_start()
    model._trainer.datamodule.hparams["max_length"] = 12
    model.on_fit_start()
    plain = TextClassifier(num_classes=2, vocab_size=50, encoder=EncoderConfig(dim=16))
    assert plain.encoder.longest_sequence() is None


def test_init_from_refuses_another_tasks_checkpoint_naming_it():
    """An ASR checkpoint given as model.init_from had been refused for "2 frontend or encoder tensor(s) are in only
    one of the two models": its task is named now, and a text task's checkpoint (or one that kept no class) passes."""
    from infomamba.tasks.text.module import not_a_text_model

    said = not_a_text_model("infomamba.tasks.asr.module:CTCSpeechRecognizer")
    assert said.startswith("is a checkpoint of CTCSpeechRecognizer (--task asr), not a text model's: ")
    assert said.endswith("--task text or --task text_mlm")
    for fine in ("infomamba.tasks.text.module:TextClassifier", "infomamba.tasks.text.pretrain:MaskedTextPretraining",
                 None):
        assert not_a_text_model(fine) is None
