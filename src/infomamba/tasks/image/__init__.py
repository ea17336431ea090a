"""Image task: patch-embedding frontend and the image data module.

`frontend.PatchEmbed` turns images into row-major token sequences with a 2-D grid;
`datamodule.ImageDataModule` reads ImageFolder trees, MNIST-family idx files or HF hub datasets
(`datasets.py` holds the readers) and yields batches `{"images", "labels"}`.
"""
