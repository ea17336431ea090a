import logging
import math
from types import SimpleNamespace
from unittest import mock

import pytest
import torch

from infomamba import EncoderConfig
from infomamba.tasks.base import RunRefused
from infomamba.tasks.text.module import TextClassifier
from infomamba.tasks.text.pretrain import MaskedTextPretraining, mask_positions, sample_seeded_masks

ENCODER = EncoderConfig(dim=16, depth=1)


def test_mask_positions_follow_berts_split_and_skip_padding():
    ids = torch.randint(1, 500, (8, 4000))
    padding = torch.zeros_like(ids, dtype=torch.bool)
    padding[:, 3000:] = True
    predicted, blanked, corrupted = mask_positions(ids, padding, 0.15, 500, torch.Generator().manual_seed(0))
    assert not predicted[padding].any() and not blanked[~predicted].any()
    assert abs(predicted[~padding].float().mean().item() - 0.15) < 0.01
    assert abs(blanked.sum().item() / predicted.sum().item() - 0.8) < 0.02
    changed = corrupted != ids
    assert not changed[~predicted].any()
    assert abs(changed[predicted & ~blanked].float().mean().item() - 0.5) < 0.05  # random id: half of the 20 %
    again = mask_positions(ids, padding, 0.15, 500, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((predicted, blanked, corrupted), again))


def test_a_blanked_token_is_not_seen_by_the_model():
    torch.manual_seed(0)
    model = MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=ENCODER, mask_rate=0.3).eval()
    ids = torch.randint(1, 60, (2, 40))
    padding = torch.zeros_like(ids, dtype=torch.bool)
    def masks(t):  # the draws do not depend on the ids: the same positions for ids and other
        return mask_positions(t, padding, 0.3, 60, torch.Generator().manual_seed(3))
    predicted, blanked, _ = masks(ids)
    b, t = blanked.nonzero()[0].tolist()
    other = ids.clone()
    other[b, t] = ids[b, t] % 59 + 1
    logits, targets, _ = model.masked_logits(ids, padding, masks(ids))
    logits2, targets2, _ = model.masked_logits(other, padding, masks(other))
    assert torch.allclose(logits, logits2) and logits.shape == (int(predicted.sum()), 60)
    assert (targets != targets2).sum() == 1
    seen = (~predicted).nonzero()[0].tolist()  # a token not predicted is seen: changing it changes the logits
    other[b, t], other[seen[0], seen[1]] = ids[b, t], ids[seen[0], seen[1]] % 59 + 1
    assert not torch.allclose(logits, model.masked_logits(other, padding, masks(other))[0])


def test_a_pretraining_on_texts_alone_builds_with_no_class():
    """Texts without labels link num_classes=0 to the model (the masked LM has no classifier head to size)."""
    model = MaskedTextPretraining(num_classes=0, class_names=[], vocab_size=60, encoder=ENCODER)
    assert model.hparams.num_classes == 0 and model.head is None


def test_mlm_refuses_bigrams_and_bad_rates():
    with pytest.raises(ValueError, match="bigram"):
        MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=ENCODER, bigram_buckets=64)
    with pytest.raises(ValueError, match="mask_rate"):
        MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=ENCODER, mask_rate=0.0)


def _checkpoint(tmp_path, model, tokenizer=None):
    path = tmp_path / "pretrained.ckpt"
    torch.save({"state_dict": model.state_dict(), **({"tokenizer": tokenizer} if tokenizer else {})}, path)
    return path


def test_init_from_copies_the_frontend_and_encoder_and_keeps_the_head(tmp_path, caplog):
    torch.manual_seed(0)
    pretrained = MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=ENCODER)
    torch.manual_seed(1)
    model = TextClassifier(num_classes=3, vocab_size=60, encoder=ENCODER)
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    with caplog.at_level(logging.INFO):
        model.load_pretrained(_checkpoint(tmp_path, pretrained))
    loaded = sum(key == "pos" or key.startswith(("embed.", "encoder.")) for key in model.state_dict())
    assert "frontend and encoder tensors loaded; the head starts fresh" in caplog.text
    assert f": {loaded} frontend and encoder tensors loaded" in caplog.text  # the run says what it carried over
    theirs = pretrained.state_dict()
    for key, value in model.state_dict().items():
        if key.startswith("head."):
            assert torch.equal(value, head[key.removeprefix("head.")])
        elif key == "pos" or key.startswith(("embed.", "encoder.")):
            assert torch.equal(value, theirs[key]), key
    assert any(k.startswith("encoder.") for k in theirs)


def test_init_from_refuses_another_shape_tokenizer_or_file(tmp_path):
    wider = MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=EncoderConfig(dim=32, depth=1))
    model = TextClassifier(num_classes=2, vocab_size=60, encoder=ENCODER)
    with pytest.raises(ValueError, match=r"pos is \(4096, 32\) there and \(4096, 16\) here"):
        model.load_pretrained(_checkpoint(tmp_path, wider))
    deeper = MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=EncoderConfig(dim=16, depth=2))
    with pytest.raises(ValueError, match="in only one of the two models"):
        model.load_pretrained(_checkpoint(tmp_path, deeper))
    tokenizer = SimpleNamespace(vocab_size=60, pad_id=0, to_json=lambda: '{"ours": 1}')
    model = TextClassifier(num_classes=2, vocab_size=60, encoder=ENCODER, tokenizer=tokenizer)
    same = MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=ENCODER)
    with pytest.raises(ValueError, match="tokenizer differs"):
        model.load_pretrained(_checkpoint(tmp_path, same, '{"theirs": 1}'))
    model.load_pretrained(_checkpoint(tmp_path, same, '{"ours": 1}'))
    torch.save({"weights": 1}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a Lightning checkpoint"):
        model.load_pretrained(tmp_path / "plain.pt")


def test_an_init_from_that_cannot_start_the_fit_refuses_it_in_one_line(tmp_path):
    """RunRefused, which the CLI ends the command with as one line; a missing file had been a FileNotFoundError and
    the others a ValueError, each a traceback through Lightning's setup."""
    model = TextClassifier(num_classes=2, vocab_size=60, encoder=ENCODER)
    with pytest.raises(RunRefused, match=r"^model.init_from \S*absent.ckpt is not a file$"):
        model.load_pretrained(tmp_path / "absent.ckpt")
    wider = MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=EncoderConfig(dim=32, depth=1))
    with pytest.raises(RunRefused, match=r"pos is \(4096, 32\) there"):
        model.load_pretrained(_checkpoint(tmp_path, wider))


@pytest.mark.parametrize("ckpt_path, loads", [(None, True), ("last.ckpt", False)])
def test_init_from_is_read_when_a_fit_begins_not_when_it_resumes(tmp_path, ckpt_path, loads):
    model = TextClassifier(num_classes=2, vocab_size=60, encoder=ENCODER, init_from=str(tmp_path / "p.ckpt"))
    with mock.patch.object(TextClassifier, "trainer", SimpleNamespace(ckpt_path=ckpt_path, precision="32-true")), \
            mock.patch.object(TextClassifier, "load_pretrained") as load:
        model.setup("fit")
        model.setup("test")
    assert load.call_count == int(loads)


def test_cli_pretrains_then_starts_the_classifier_from_it(tmp_path, monkeypatch):
    from infomamba.cli import main

    monkeypatch.chdir(tmp_path)
    tiny = ["--data.listops_size=64", "--data.batch_size=16", "--model.encoder.dim=16", "--model.encoder.depth=1",
            "--model.encoder.mixer_options={k_max: 8, d_state: 4, d_concept: 8}",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    main(["fit", "--task", "text_mlm", *tiny, "--trainer.max_steps=3", "--trainer.limit_val_batches=1",
          "--run_dir", "mlm"])
    pretrained = torch.load(tmp_path / "mlm/checkpoints/last.ckpt", weights_only=False)["state_dict"]
    assert "lm_bias" in pretrained and not any(k.startswith("head.") for k in pretrained)
    # lr 0: one step leaves the weights as the fit began, so the checkpoint shows what init_from loaded
    main(["fit", "--task", "text", *tiny, "--trainer.max_steps=1", "--trainer.limit_val_batches=0",
          "--model.lr=0", "--model.init_from=mlm/checkpoints/last.ckpt", "--run_dir", "cls"])
    started = torch.load(tmp_path / "cls/checkpoints/last.ckpt", weights_only=False)["state_dict"]
    shared = [k for k in started if k == "pos" or k.startswith(("embed.", "encoder."))]
    assert shared and all(torch.equal(started[k], pretrained[k]) for k in shared)


def test_a_batch_with_no_predicted_token_has_a_finite_zero_task_loss():
    model = MaskedTextPretraining(num_classes=2, vocab_size=60, encoder=ENCODER, mask_rate=1e-9)
    batch = {"input_ids": torch.randint(1, 60, (1, 3)), "padding_mask": torch.zeros(1, 3, dtype=torch.bool)}
    with mock.patch.object(model, "objective", lambda task, *_: task), mock.patch.object(model, "log"):
        loss = model._step(batch, "train")
    assert loss.item() == 0.0


def test_a_texts_validation_masks_do_not_depend_on_its_batch():
    """Each text keeps its masked tokens whether it is evaluated alone or padded in a batch with others (as DDP
    and another batch size split the validation set), and texts with other ids get other masks."""
    torch.manual_seed(0)
    texts = [torch.randint(1, 500, (n,)) for n in (37, 80, 12, 80)]
    batch = torch.zeros(len(texts), 90, dtype=torch.long)
    padding = torch.ones_like(batch, dtype=torch.bool)
    for i, t in enumerate(texts):
        batch[i, 3:3 + len(t)], padding[i, 3:3 + len(t)] = t, False  # padding on both sides
    together = sample_seeded_masks(batch, padding, 0.3, 500)
    assert not together[0][padding].any() and torch.equal(together[2][padding], batch[padding])
    for i, t in enumerate(texts):
        alone = sample_seeded_masks(t[None], torch.zeros(1, len(t), dtype=torch.bool), 0.3, 500)
        assert all(torch.equal(a[0], b[i][~padding[i]]) for a, b in zip(alone, together)), i
    assert not torch.equal(together[0][1][~padding[1]], together[0][3][~padding[3]])  # same length, other ids


def test_validation_scores_the_same_masked_tokens_in_any_batch_split():
    """The module's val step: the targets of two texts evaluated as one batch are those of the two evaluated one
    at a time (a batch-seeded generator gave each split other masks)."""
    model = MaskedTextPretraining(num_classes=2, vocab_size=500, encoder=ENCODER, mask_rate=0.3).eval()
    texts = [torch.randint(1, 500, (1, 60), generator=torch.Generator().manual_seed(s)) for s in (1, 2)]
    seen = []
    def record(ids, padding_mask, masks):
        seen.append(ids[masks[0]])
        return torch.zeros(int(masks[0].sum()), 500), ids[masks[0]], None
    with mock.patch.object(model, "masked_logits", record), mock.patch.object(model, "objective"), \
            mock.patch.object(model, "log"):
        model._step({"input_ids": torch.cat(texts), "padding_mask": torch.zeros(2, 60, dtype=torch.bool)}, "val")
        for t in texts:
            model._step({"input_ids": t, "padding_mask": torch.zeros(1, 60, dtype=torch.bool)}, "val")
    assert seen[0].numel() > 0 and torch.equal(seen[0], torch.cat(seen[1:]))


@pytest.mark.parametrize("dim", [16, 128])
def test_the_untrained_model_starts_near_a_uniform_guess(dim):
    torch.manual_seed(0)
    vocab = 4000
    model = MaskedTextPretraining(num_classes=2, vocab_size=vocab, encoder=EncoderConfig(dim=dim, depth=1)).eval()
    ids = torch.randint(1, vocab, (4, 200))
    padding = torch.zeros_like(ids, dtype=torch.bool)
    logits, targets, _ = model.masked_logits(ids, padding, mask_positions(ids, padding, 0.15, vocab,
                                                                          torch.Generator().manual_seed(0)))
    loss = torch.nn.functional.cross_entropy(logits, targets).item()
    assert abs(loss - math.log(vocab)) < 1.0, loss
