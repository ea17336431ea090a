"""Image task: patch-embedding frontend and the image data module.

`frontend.PatchEmbed` turns images into row-major token sequences with a 2-D grid (plain torch, importable
without torchvision); `datamodule.ImageDataModule` reads ImageFolder trees, class folders, MNIST-family idx files
or HF hub datasets (`datasets.py` holds the readers) and yields batches `{"images", "labels"}`. torchvision
is this task's only extra dependency (`pip install 'infomamba[image]'`); the data files ask for it with
`require_torchvision`, which names that fix when it is missing or built for another torch.

Registered as `--task image` by class paths, so importing this folder imports nothing heavy.
"""
from ..optional_deps import hide_broken_torchvision
from ..registry import register_task

hide_broken_torchvision()
# What an evaluation takes from its checkpoint unless given: the resolution the weights saw, and the carve (seed and
# fractions) and columns of the data, so that a moved checkpoint is scored at its size on images it did not train on.
TRAINED_DATA = ("image_size", "seed", "val_fraction", "test_fraction", "image_column", "label_column")
register_task(
    "image", "infomamba.tasks.image.module:ImageClassifier", "infomamba.tasks.image.datamodule:ImageDataModule",
    monitor=("val/acc", "max"), max_epochs=10,
    links={"num_classes": "num_classes", "class_names": "class_names", "in_chans": "in_chans",
           "image_size": "image_size"},
    trained_data=TRAINED_DATA,
)
