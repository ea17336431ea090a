"""A text model predicts at the data.max_length it was trained with, not at its (longer) position table: the value
travels in the checkpoint (the data module's hyperparameters) to `predict_texts`, and a Trainer run whose data
module truncates elsewhere is reported."""
import lightning as L
import pytest
import torch

from infomamba import EncoderConfig
from infomamba.tasks.text.datamodule import TextDataModule
from infomamba.tasks.text.module import TextClassifier
from tiny_data import write_sentiment_csv

TRAINED, POSITIONS = 16, 64  # data.max_length of the fit < model.max_positions
# bytes: one token per character, so LONG[:n] is LONG truncated to n tokens; its tail is of the other class
LONG = "a great superb lovely film " * 2 + "awful terrible boring dull " * 4
assert len(LONG) > POSITIONS and not LONG[TRAINED - 1].isspace()


def _data(tmp_path, **kwargs) -> TextDataModule:
    return TextDataModule(root=str(tmp_path / "reviews"), tokenizer="bytes", batch_size=8,
                          cache_dir=str(tmp_path / "cache"), **kwargs)


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    return L.Trainer(use_distributed_sampler=False, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, **kwargs)


def _scores(rows: list[dict]) -> list[tuple[str, float]]:
    return [(row["label"], row["score"]) for row in rows]


def _direct(model: TextClassifier, text: str) -> list[tuple[str, float]]:
    """`_scores` of the model's forward on every token of `text`: the reference, truncated by nobody."""
    ids = torch.tensor(model.tokenizer.encode_batch([text]))
    with torch.no_grad():
        probs = model.eval()(ids, torch.zeros_like(ids, dtype=torch.bool))[0].softmax(-1)[0]
    return [(model.class_names[int(probs.argmax())], round(float(probs.max()), 6))]


@pytest.fixture
def fitted(tmp_path):
    """A tiny classifier fit on texts truncated to TRAINED tokens with POSITIONS positions, and its checkpoint."""
    write_sentiment_csv(tmp_path / "reviews")
    dm = _data(tmp_path, max_length=TRAINED)
    model = TextClassifier(num_classes=dm.num_classes, vocab_size=dm.vocab_size, pad_id=dm.pad_id,
                           class_names=dm.class_names, tokenizer=dm.text_tokenizer, max_positions=POSITIONS,
                           encoder=EncoderConfig(dim=16, depth=1, mixer_options={"k_max": 8, "d_state": 4}))
    trainer = _trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    return model, tmp_path / "model.ckpt"


def test_a_checkpoint_predicts_raw_texts_truncated_as_in_training(fitted):
    model, path = fitted
    loaded = TextClassifier.load_from_checkpoint(path, map_location="cpu")
    assert loaded.trained_max_length == model.trained_max_length == TRAINED
    as_trained = _direct(loaded, LONG[:TRAINED])
    assert as_trained != _direct(loaded, LONG[:POSITIONS])  # the old default differs: the test discriminates
    assert _scores(loaded.predict_texts([LONG])) == as_trained
    assert _scores(model.predict_texts([LONG])) == as_trained  # the fitted model, before any checkpoint
    # an explicit max_length wins, capped by max_positions
    assert _scores(loaded.predict_texts([LONG], max_length=32)) == _direct(loaded, LONG[:32])
    assert _scores(loaded.predict_texts([LONG], max_length=10_000)) == _direct(loaded, LONG[:POSITIONS])


def test_a_checkpoint_without_the_data_length_predicts_at_max_positions_as_before(fitted, tmp_path):
    _, path = fitted
    checkpoint = torch.load(path, weights_only=False)
    assert checkpoint["datamodule_hyper_parameters"]["max_length"] == TRAINED  # where the value travels
    del checkpoint["datamodule_hyper_parameters"]  # a fit without a data module, or one that kept no settings
    torch.save(checkpoint, tmp_path / "old.ckpt")
    loaded = TextClassifier.load_from_checkpoint(tmp_path / "old.ckpt", map_location="cpu")
    assert loaded.trained_max_length is None
    assert _scores(loaded.predict_texts([LONG])) == _direct(loaded, LONG[:POSITIONS]) != _direct(loaded, LONG[:TRAINED])


def test_a_trainer_run_truncating_elsewhere_is_reported_and_one_as_trained_predicts_as_predict_texts(
        fitted, tmp_path, recwarn):
    _, path = fitted
    (tmp_path / "inputs.txt").write_text(LONG + "\n")
    loaded = TextClassifier.load_from_checkpoint(path, map_location="cpu")
    expected = _scores(loaded.predict_texts([LONG]))
    rows = _trainer(tmp_path).predict(loaded, datamodule=_data(tmp_path, max_length=TRAINED,
                                                               predict_path=str(tmp_path / "inputs.txt")),
                                      ckpt_path=path)
    assert not [w for w in recwarn if "max_length" in str(w.message)]
    assert [(label, pytest.approx(score, abs=1e-5)) for label, score in _scores(rows[0])] == expected
    with pytest.warns(UserWarning, match=f"data.max_length={POSITIONS} is not the data.max_length={TRAINED}"):
        _trainer(tmp_path).predict(loaded, datamodule=_data(tmp_path, max_length=POSITIONS,
                                                            predict_path=str(tmp_path / "inputs.txt")),
                                   ckpt_path=path)
