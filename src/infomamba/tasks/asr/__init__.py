"""Speech recognition (CTC) task: transcript vocabularies, audio front end and the LibriSpeech / NeMo
manifest / HF hub data module.

- ``vocab``: LibriSpeech-style transcript normalisation, ``CharVocab`` and ``SubwordVocab`` (blank = 0)
  with CTC greedy decoding.
- ``audio``: ``load_audio`` (soundfile + torchaudio resampling), ``LogMel`` features, ``SpecAugment``.
- ``augment``: training-waveform augmentation (speed perturbation, a simulated telephone channel).
- ``sources``: readers that turn a split (LibriSpeech tree, NeMo manifest, hub split, predict inputs)
  into utterance records, counting every skipped file by reason.
- ``datamodule``: ``ASRDataModule`` (filters, length-bucketed DDP-aware batches, per-split loaders).
- ``module``: ``CTCSpeechRecognizer``; its vocabulary travels in its checkpoint (``transcribe`` needs no data).

Registered as `--task asr` by class paths (nothing heavy is imported here); `hide_broken_torchvision`
runs first because Lightning's torchmetrics imports torchvision, which speech does not need.
"""
from ..optional_deps import hide_broken_torchvision
from ..registry import register_task

hide_broken_torchvision()
register_task(
    "asr", "infomamba.tasks.asr.module:CTCSpeechRecognizer", "infomamba.tasks.asr.datamodule:ASRDataModule",
    monitor=("val/wer", "min"), max_epochs=30,
    links={"num_classes": "vocab_size", "vocab": "vocab", "sample_rate": "sample_rate"},
    trained_data=("sample_rate", "n_mels"),
)
