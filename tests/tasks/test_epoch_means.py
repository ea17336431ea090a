"""`epoch_sums` of an epoch's first batches, added into a collection that logged only the rest (`add_sums`), give
the means of the whole epoch: a batch-size-weighted tensor mean, a summed tensor and a torchmetrics metric."""
import pytest
import torch
from lightning.pytorch.trainer.connectors.logger_connector.result import _ResultCollection
from torchmetrics.classification import MulticlassAccuracy

from infomamba.tasks.epoch_means import add_sums, epoch_sums

LOSSES = [0.5, 2.0, 1.0, 4.0, 3.0]
SIZES = [8, 2, 8, 8, 3]
PREDS = [torch.tensor([0, 1, 2, 1]), torch.tensor([2, 2, 0, 0]), torch.tensor([1, 1, 1, 1]),
         torch.tensor([0, 0, 0, 0]), torch.tensor([2, 1, 0, 2])]
LABELS = torch.tensor([0, 1, 2, 0])


def logged(batches: range, accuracy: MulticlassAccuracy | None = None) -> _ResultCollection:
    """A training result collection that logged `batches` as a task's training_step does."""
    results = _ResultCollection(training=True)
    accuracy = accuracy or MulticlassAccuracy(num_classes=3, average="micro")
    for i in batches:
        results.log("training_step", "train/loss", torch.tensor(LOSSES[i]), on_step=True, batch_size=SIZES[i])
        results.log("training_step", "train/seen", torch.tensor(float(SIZES[i])), reduce_fx="sum")
        results.log("training_step", "train/step_only", torch.tensor(1.0), on_step=True, on_epoch=False)
        accuracy(PREDS[i], LABELS)
        results.log("training_step", "train/acc", accuracy, metric_attribute="accuracy")
    return results


def epoch_values(results: _ResultCollection) -> dict[str, float]:
    return {key: float(result.compute()) for key, result in results.items() if result.meta.on_epoch}


def test_the_first_batches_sums_added_into_the_rest_give_the_whole_epochs_means():
    whole = epoch_values(logged(range(5)))
    first = epoch_sums(logged(range(2)))
    assert "training_step.train/step_only" not in first
    assert epoch_values(logged(range(2, 5))) != whole  # what a resumed epoch reported
    rest = logged(range(2, 5))
    add_sums(rest, first)
    assert epoch_values(rest) == whole
    assert whole["training_step.train/loss"] == pytest.approx(sum(l * s for l, s in zip(LOSSES, SIZES)) / sum(SIZES))


def test_sums_survive_a_checkpoint_round_trip(tmp_path):
    """They go through torch.save and torch.load with the checkpoint, off the device they were summed on."""
    torch.save(epoch_sums(logged(range(2))), tmp_path / "sums.pt")
    rest = logged(range(2, 5))
    add_sums(rest, torch.load(tmp_path / "sums.pt", weights_only=False))
    assert epoch_values(rest) == epoch_values(logged(range(5)))
