"""Text classification: datamodule, tokenizers and the generated ListOps task; masked-LM self-pretraining.

Registered as `--task text` (and `--task text_mlm`, the pretraining on the same data or on texts without labels)
by class paths, so importing this folder imports neither Lightning nor the task's modules. `hide_broken_torchvision`
runs before they can be imported: Lightning's torchmetrics imports torchvision, which a text run does not need (see
`optional_deps`).
"""
from ..optional_deps import hide_broken_torchvision
from ..registry import register_task

hide_broken_torchvision()
# What an evaluation takes from its checkpoint unless given: the truncation the weights saw, and the carve (seed and
# fractions) and columns of the data, so that a moved checkpoint's validation split holds no text it trained on.
TRAINED_DATA = ("max_length", "seed", "val_fraction", "test_fraction", "text_column", "label_column")
LINKS = {"num_classes": "num_classes", "class_names": "class_names", "vocab_size": "vocab_size", "pad_id": "pad_id",
         "text_tokenizer": "tokenizer"}
register_task(
    "text", "infomamba.tasks.text.module:TextClassifier", "infomamba.tasks.text.datamodule:TextDataModule",
    monitor=("val/acc", "max"), max_epochs=3, links=LINKS, trained_data=TRAINED_DATA,
)
register_task(
    "text_mlm", "infomamba.tasks.text.pretrain:MaskedTextPretraining",
    "infomamba.tasks.text.datamodule:MaskedTextDataModule", monitor=("val/loss", "min"), max_epochs=3, links=LINKS,
    trained_data=TRAINED_DATA,
)
