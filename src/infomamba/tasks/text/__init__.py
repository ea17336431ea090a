"""Text classification: datamodule, tokenizers and the generated ListOps task."""
