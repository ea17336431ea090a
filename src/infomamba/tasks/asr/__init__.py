"""Speech recognition (CTC) task: transcript vocabularies, audio front end and the LibriSpeech / NeMo
manifest / HF hub data module.

- ``vocab``: LibriSpeech-style transcript normalisation, ``CharVocab`` and ``SubwordVocab`` (blank = 0)
  with CTC greedy decoding.
- ``audio``: ``load_audio`` (soundfile + torchaudio resampling), ``LogMel`` features, ``SpecAugment``.
- ``sources``: readers that turn a split (LibriSpeech tree, NeMo manifest, hub split, predict inputs)
  into utterance records, counting every skipped file by reason.
- ``datamodule``: ``ASRDataModule`` (filters, length-bucketed DDP-aware batches, per-split loaders).
"""
