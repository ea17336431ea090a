"""ASRDataModule on generated LibriSpeech-layout trees, NeMo manifests and a stand-in hub split."""

import json
import logging
import math
import random
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import soundfile
import torch

from infomamba.tasks.asr.audio import LogMel
from infomamba import EncoderConfig
from infomamba.losses import LossWeights
from infomamba.tasks.asr.datamodule import ASRDataModule, audio_time, collate_asr, hold_out, speaker_of, utterances
from infomamba.tasks.asr.module import CTCSpeechRecognizer
from infomamba.tasks.asr.sources import Utterance, read_manifest

WORDS = "THE QUICK BROWN FOX JUMPS OVER A LAZY DOG IT'S TIME TO SPEAK CLEARLY NOW".split()
MEL = LogMel()


def _words(rng: np.random.Generator, n: int) -> str:
    return " ".join(rng.choice(WORDS, size=n))


def _audio(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    t = np.arange(round(sr * seconds)) / sr
    freq = rng.uniform(200, 900)
    return (0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


class Tree:
    """A LibriSpeech-layout fixture: what was written and what each split should keep."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "LibriSpeech"
        self.samples: dict[str, int] = {}  # utt id -> samples at the file's rate
        self.rates: dict[str, int] = {}
        self.texts: dict[str, str] = {}  # utt id -> normalised transcript
        self.rng = np.random.default_rng(0)

    def chapter(self, split, speaker, chapter, utts, ext="flac", sr=16000, raw_text=None):
        """utts: list of (index, seconds or None for no audio, text or None for no line, kind)."""
        folder = self.root / split / str(speaker) / str(chapter)
        folder.mkdir(parents=True)
        lines = []
        for index, seconds, text in utts:
            utt_id = f"{speaker}-{chapter}-{index:04d}"
            if seconds is not None:
                path = folder / f"{utt_id}.{ext}"
                data = _audio(self.rng, sr, seconds)
                soundfile.write(path, data, sr, subtype="VORBIS" if ext == "ogg" else "PCM_16")
                self.samples[utt_id], self.rates[utt_id] = data.size, sr
            if text is not None:
                lines.append(f"{utt_id} {text}")
                self.texts[utt_id] = text
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n")
        return folder

    def frames(self, utt_id: str) -> int:
        return MEL.num_frames(math.ceil(self.samples[utt_id] * 16000 / self.rates[utt_id]))


TRAIN_SKIPS = {
    "no_transcript": 1, "no_audio": 1, "oov": 1, "too_short_for_ctc": 1, "unreadable": 1,
    "too_short": 1, "too_long": 1,
}
CORRUPT = "12-120-0011"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Tree:
    t = Tree(tmp_path_factory.mktemp("speech"))
    rng = t.rng
    good = [(i, float(rng.uniform(0.8, 1.6)), _words(rng, int(rng.integers(2, 5)))) for i in range(6)]
    t.chapter("train-clean-100", 11, 110, good)
    folder = t.chapter("train-clean-100", 12, 120, [
        *[(i, float(rng.uniform(0.8, 1.6)), _words(rng, 3)) for i in range(4)],
        (4, 1.0, None),  # audio without a transcript line
        (5, None, "NO AUDIO FOR THIS LINE"),  # transcript line without audio
        (6, 1.0, "PRESS 1 NOW"),  # digit: spoken content the normalisation would drop
        (7, 0.4, "THIS SENTENCE IS FAR TOO LONG FOR SO SHORT A RECORDING"),  # 41 frames // 4 < 54 labels
        (8, 1.0, "UNREADABLE FILE"),
        (9, 0.2, "SHORT"),
        (10, 3.5, "A LONG ONE"),
        (11, 1.2, "CORRUPT AFTER THE HEADER"),
    ])
    for utt_id in ("12-120-0006", "12-120-0008", "12-120-0009", "12-120-0010", "12-120-0004", "12-120-0007"):
        t.samples.pop(utt_id, None)
        t.texts.pop(utt_id, None)
    t.texts.pop("12-120-0005")
    (folder / "12-120-0008.flac").write_bytes(b"not a flac file" * 50)
    corrupt = folder / f"{CORRUPT}.flac"
    corrupt.write_bytes(corrupt.read_bytes()[:400])  # header (duration) intact, frames gone
    t.chapter("dev-clean", 21, 210, [(i, float(rng.uniform(0.6, 1.2)), _words(rng, 3)) for i in range(3)],
              ext="wav")
    t.chapter("test-8k", 31, 310, [
        *[(i, float(rng.uniform(0.6, 2.0)), _words(rng, 3)) for i in range(4)],
        (4, 0.35, "A TEST UTTERANCE MUCH TOO SHORT FOR CTC"),
    ], sr=8000)
    t.chapter("test-ogg", 41, 410, [(i, float(rng.uniform(0.6, 1.5)), _words(rng, 4)) for i in range(3)],
              ext="ogg", sr=22050)
    return t


def _wav(path: Path, seconds: float = 0.5, sr: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, _audio(np.random.default_rng(0), sr, seconds), sr)
    return path


def make_dm(tree: Tree, **kwargs) -> ASRDataModule:
    args = dict(root=str(tree.root), train_splits=["train-clean-100"], val_splits=["dev-clean"],
                test_splits=["test-8k", "test-ogg"], max_duration=3.0, batch_size=4)
    args.update(kwargs)
    return ASRDataModule(**args)


def drain(dm: ASRDataModule, loader) -> list[dict]:
    """All batches of ``loader`` after the data module's own pre-transfer hook (None batches dropped)."""
    out = []
    for batch in loader:
        batch = dm.on_before_batch_transfer(batch, 0)
        if batch is not None:
            out.append(batch)
    return out


def check_batch(dm: ASRDataModule, batch: dict, tree: Tree) -> None:
    feats, flen = batch["features"], batch["feature_lengths"]
    B = feats.shape[0]
    assert feats.dtype == torch.float32 and feats.shape == (B, int(flen.max()), 80)
    assert batch["targets"].dtype == torch.long and batch["targets"].shape == (B, int(batch["target_lengths"].max()))
    assert len(batch["transcripts"]) == len(batch["utt_ids"]) == B == flen.numel() == batch["target_lengths"].numel()
    assert "load_errors" not in batch
    for b, utt_id in enumerate(batch["utt_ids"]):
        n, s = int(flen[b]), int(batch["target_lengths"][b])
        assert n == tree.frames(utt_id)
        assert (feats[b, n:] == 0).all() and (batch["targets"][b, s:] == 0).all()
        assert batch["transcripts"][b] == tree.texts[utt_id]
        assert dm.vocab.decode(batch["targets"][b, :s].tolist()) == tree.texts[utt_id]


def ids_of(tree: Tree, split: str) -> set[str]:
    return {u for u in tree.texts if (tree.root / split).joinpath(*u.split("-")[:2]).is_dir()}


def test_tree_skips_are_counted_and_logged_once_per_split(tree, caplog):
    dm = make_dm(tree)
    with caplog.at_level(logging.INFO, logger="infomamba.tasks.asr.datamodule"):
        dm.setup("fit")
    stats = dm.split_stats["train-clean-100"]
    assert stats["skipped"] == TRAIN_SKIPS
    assert stats["utterances"] == len(ids_of(tree, "train-clean-100")) == 11
    dev = dm.split_stats["dev-clean"]
    assert (dev["utterances"], dev["skipped"], dev["ctc_infeasible"]) == (3, {}, 0)
    assert dev["hours"] == pytest.approx(sum(tree.samples[u] for u in ids_of(tree, "dev-clean")) / 16000 / 3600)
    lines = [r.getMessage() for r in caplog.records if "ASR split 'train-clean-100'" in r.getMessage()]
    assert len(lines) == 1
    for piece in ("no_transcript=1", "12-120-0004", "oov=1", "12-120-0006 (character '1')",
                  "too_short_for_ctc=1", "12-120-0007", "unreadable=1", "12-120-0008", "too_long=1 [e.g. 12-120-0010"):
        assert piece in lines[0]


def test_train_batches_are_consistent_and_corrupt_file_is_dropped(tree, caplog):
    dm = make_dm(tree)
    dm.setup("fit")
    with caplog.at_level(logging.WARNING):
        batches = drain(dm, dm.train_dataloader())
    seen = [u for b in batches for u in b["utt_ids"]]
    assert sorted(seen) == sorted(ids_of(tree, "train-clean-100") - {CORRUPT})
    assert dm.load_failures == [CORRUPT]
    assert len([r for r in caplog.records if CORRUPT in r.getMessage()]) == 1
    for batch in batches:
        check_batch(dm, batch, tree)


def test_collate_all_failed_batch_becomes_none():
    dm = ASRDataModule(root="unused")
    batch = collate_asr([{"utt_id": "a", "error": "x"}, {"utt_id": "b", "error": "y"}])
    assert dm.on_before_batch_transfer(batch, 0) is None
    assert dm.load_failures == ["a", "b"]
    dm.on_before_batch_transfer(collate_asr([{"utt_id": "a", "error": "x"}, {"utt_id": "c", "error": "z"}]), 0)
    assert dm.load_failures == ["a", "b", "c"]  # a file met again (next epoch, next validation) counts once


def test_eval_loaders_one_per_split_with_names(tree):
    dm = make_dm(tree)
    dm.setup("fit")
    dm.setup("test")
    assert dm.val_split_names == ["dev-clean"] and dm.test_split_names == ["test-8k", "test-ogg"]
    assert len(dm.val_dataloader()) == 1
    loaders = dm.test_dataloader()
    assert isinstance(loaders, list) and len(loaders) == 2
    for name, loader in zip(dm.test_split_names, loaders):
        batches = drain(dm, loader)
        seen = [u for b in batches for u in b["utt_ids"]]
        assert sorted(seen) == sorted(ids_of(tree, name))  # every utterance once, nothing filtered
        for batch in batches:
            check_batch(dm, batch, tree)  # 8 kHz flac and 22.05 kHz ogg resampled to 16 kHz frames
    assert dm.split_stats["test-8k"]["ctc_infeasible"] == 1


def test_filter_eval_applies_duration_and_ctc_filters_to_test_splits(tree):
    dm = make_dm(tree, filter_eval=True)
    dm.setup("test")
    assert dm.split_stats["test-8k"]["skipped"] == {"too_short_for_ctc": 1}
    assert dm.split_stats["test-8k"]["utterances"] == 4


def test_root_may_be_the_folder_holding_librispeech(tree):
    dm = make_dm(tree, root=str(tree.base))
    dm.setup("test")
    assert [dm.split_stats[n]["utterances"] for n in dm.test_split_names] == [5, 3]


def test_heldout_validation_when_val_splits_is_empty(tree, caplog):
    with caplog.at_level(logging.INFO, logger="infomamba.tasks.asr.datamodule"):
        dm = make_dm(tree, val_splits=[], val_fraction=0.2, seed=3)
        dm.setup("fit")
    assert dm.val_split_names == ["heldout"]
    held = {u.utt_id for u in dm._val["heldout"].utts}
    train = {u.utt_id for u in dm._train.utts}
    assert len(held) == 2 and not held & train and len(held | train) == 11
    assert any("holding out 2 of 11" in r.getMessage() for r in caplog.records)
    again = make_dm(tree, val_splits=[], val_fraction=0.2, seed=3)
    again.setup("fit")
    assert {u.utt_id for u in again._val["heldout"].utts} == held


def test_heldout_by_speaker_holds_out_whole_voices(tree, caplog):
    with caplog.at_level(logging.INFO, logger="infomamba.tasks.asr.datamodule"):
        dm = make_dm(tree, val_splits=[], val_fraction=0.2, val_by="speaker", seed=3)
        dm.setup("fit")
    everyone = make_dm(tree, val_splits=[], val_fraction=0.0)
    everyone.setup("fit")
    speakers = {u.utt_id: speaker_of(u.utt_id) for u in everyone._train.utts}
    held = {speakers[u.utt_id] for u in dm._val["heldout"].utts}
    trained = {speakers[u.utt_id] for u in dm._train.utts}
    assert len(held) == 1 and trained and not held & trained  # 0.2 of 2 speakers rounds up to one
    assert len(dm._val["heldout"].utts) == sum(s in held for s in speakers.values())
    assert any("of 1 speaker(s)" in r.getMessage() for r in caplog.records)
    for seed in range(8):  # both voices come out for some seed: the draw is not fixed to one speaker
        again = make_dm(tree, val_splits=[], val_fraction=0.2, val_by="speaker", seed=seed)
        again.setup("fit")
        held |= {speakers[u.utt_id] for u in again._val["heldout"].utts}
    assert held == set(speakers.values())


def test_hold_out_draws_utterances_or_speakers_with_the_seed():
    utts = [Utterance(f"{spk}-1-{i:04d}", "a.wav", 1.0, "A") for spk in (7, 8, 9) for i in range(4)]
    train, val = hold_out(utts, 0.25, seed=5, by="utterance")
    assert [u.utt_id for u in val] == [utts[i].utt_id for i in sorted(random.Random(5).sample(range(12), 3))]
    assert len(train) == 9 and not {u.utt_id for u in train} & {u.utt_id for u in val}
    train, val = hold_out(utts, 0.34, seed=5, by="speaker")
    assert len({speaker_of(u.utt_id) for u in val}) == 1 and len(val) == 4 and len(train) == 8
    with pytest.raises(ValueError, match="at least 2 speakers.*'7'"):
        hold_out(utts[:4], 0.5, seed=0, by="speaker")
    with pytest.raises(ValueError, match="data.val_by must be one of utterance, speaker, got 'voice'"):
        ASRDataModule(root="x", val_by="voice")


def test_missing_splits_are_clear_errors(tree):
    with pytest.raises(FileNotFoundError, match=r"'train-other'.*dev-clean"):
        make_dm(tree, train_splits=["train-other"]).setup("fit")
    with pytest.raises(FileNotFoundError, match="dev-other"):
        make_dm(tree, val_splits=["dev-clean", "dev-other"]).setup("fit")
    with pytest.raises(FileNotFoundError, match="test-clean"):
        make_dm(tree, test_splits=["test-clean"]).setup("test")
    for val_splits in ([], None):  # the root is named before a validation split it would hold
        with pytest.raises(FileNotFoundError, match=r"^data.root \.\./gone is not a folder \(relative to the working "):
            ASRDataModule(root="../gone", val_splits=val_splits).setup("fit")
    with pytest.raises(ValueError, match="data source"):
        ASRDataModule()
    with pytest.raises(ValueError, match="vocab"):
        ASRDataModule(root="x", vocab="words")


def test_nemo_manifests(tree, tmp_path):
    dev = tree.root / "dev-clean" / "21" / "210"
    rows = [
        {"audio_filepath": str(p.relative_to(tree.root)), "duration": tree.samples[p.stem] / 16000,
         "text": tree.texts[p.stem].lower() + "!"}
        for p in sorted(dev.glob("*.wav"))
    ]
    rows.append({"audio_filepath": "dev-clean/21/210/gone.wav", "duration": 1.0, "text": "missing"})
    test_8k = sorted((tree.root / "test-8k").rglob("*.flac"))[0]
    rows_test = [{"audio_filepath": str(test_8k), "text": "Hello -- world, isn't it?"}]  # no duration
    (tree.root / "dev.json").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "test.json").write_text(json.dumps(rows_test[0]) + "\n")
    dm = make_dm(tree, val_splits=["dev"], test_splits=["tst"],
                 manifests={"dev": str(tree.root / "dev.json"), "tst": str(tmp_path / "test.json")})
    dm.setup("fit")
    dm.setup("test")
    assert dm.val_split_names == ["dev"] and dm.test_split_names == ["tst"]
    assert dm.split_stats["dev"]["utterances"] == 3 and dm.split_stats["dev"]["skipped"] == {"no_audio": 1}
    batch = drain(dm, dm.val_dataloader()[0])[0]
    check_batch(dm, batch, tree)  # lower case and punctuation normalised back to the references
    (test_batch,) = drain(dm, dm.test_dataloader()[0])
    assert test_batch["transcripts"] == ["HELLO WORLD ISN'T IT"]
    assert test_batch["feature_lengths"].tolist() == [tree.frames(test_8k.stem)]
    (tmp_path / "bad.json").write_text('{"audio_filepath": "x.wav"}\n')
    with pytest.raises(ValueError, match=r"bad.json:1"):
        make_dm(tree, test_splits=["bad"], manifests={"bad": str(tmp_path / "bad.json")}).setup("test")


@pytest.mark.parametrize("line, problem", [
    (b'{"audio_filepath": "b.wav", "text": null}', r"'text' must be a string, got null"),
    (b'{"audio_filepath": "b.wav", "text": 12345}', r"'text' must be a string, got 12345"),
    (b'{"audio_filepath": ["b.wav"], "text": "hi"}',
     "'audio_filepath' must be a string, got " + re.escape('["b.wav"]')),
    (b'{"audio_filepath": "b.wav", "text": "hi", "duration": "1.5"}',
     r"'duration' must be a positive number of seconds \(or absent\), got " + re.escape('"1.5"')),
    (b'{"audio_filepath": "b.wav", "text": "hi", "duration": NaN}', r"'duration' must be .*, got NaN"),
    (b'{"audio_filepath": "b.wav", "text": "hi", "duration": true}', r"'duration' must be .*, got true"),
    (b'{"audio_filepath": "b.wav"}', r"not a manifest line with 'audio_filepath' and 'text' \(no 'text'\)"),
    (b'["b.wav", "hi"]', "not a manifest line with 'audio_filepath' and 'text' " + re.escape('(got ["b.wav", "hi"])')),
    (b'{"audio_filepath": "b.wav", "text": "hi"', r"not JSON \(.* at column 41\)"),
    ('{"audio_filepath": "b.wav", "text": "caf\xe9"}'.encode("latin-1"), r"not UTF-8 text \(byte 0xe9\)"),
], ids=["text null", "text number", "path list", "duration string", "duration NaN", "duration bool", "no text",
        "not an object", "not JSON", "not UTF-8"])
def test_bad_manifest_line_is_a_one_line_error_naming_file_line_and_key(tmp_path, line, problem):
    """Raised while reading, as a ValueError without a chained decoder exception; integer and null durations
    on the lines before it are fine."""
    for name in ("a", "b"):
        _wav(tmp_path / f"{name}.wav")
    good = [{"audio_filepath": "a.wav", "text": "hello", "duration": 1},
            {"audio_filepath": "a.wav", "text": "hello", "duration": None, "id": "a2"}]
    manifest = tmp_path / "m.json"
    manifest.write_bytes("".join(json.dumps(row) + "\n\n" for row in good).encode() + line + b"\n")
    with pytest.raises(ValueError) as info:
        read_manifest(manifest)
    assert re.fullmatch(rf"{re.escape(str(manifest))}:5: {problem}", str(info.value))
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


def test_a_manifest_that_is_not_a_file_is_one_line_naming_its_key(tmp_path):
    """It had been Python's bare "[Errno 2] No such file or directory: 'm.json'" (and "[Errno 21] Is a directory")."""
    (tmp_path / "folder").mkdir()
    for path, what in ((tmp_path / "gone.json", "does not exist"), (tmp_path / "folder", "is a folder, not a")):
        dm = ASRDataModule(manifests={"dev": str(path)}, train_splits=[], val_splits=["dev"])
        with pytest.raises(FileNotFoundError, match=rf"^data.manifests.dev {re.escape(str(path))} {what}"):
            dm.setup("validate")


def test_a_named_validation_split_that_does_not_exist_is_an_error_listing_those_that_do(tree):
    with pytest.raises(FileNotFoundError) as info:
        make_dm(tree, val_splits=["dev-clen"]).setup("fit")
    message = str(info.value)
    assert "\n" not in message and message.startswith("validation split(s) ['dev-clen'] not found")
    assert f"split folders under {tree.root}: ['dev-clean', 'test-8k', 'test-ogg', 'train-clean-100']" in message


def test_validate_reads_the_training_splits_only_for_a_held_out_validation(tree):
    """A named validation split is read alone (the training split named here does not exist, as where it was not
    copied to an evaluation machine) and equals the one fit builds; a hold-out is carved from the training utterances
    as fit carves it."""
    alone = make_dm(tree, train_splits=["train-gone"])
    alone.setup("validate")
    fitted = make_dm(tree)
    fitted.setup("fit")
    assert alone._train is None and alone.val_split_names == ["dev-clean"]
    assert [u.utt_id for u in alone._val["dev-clean"].utts] == [u.utt_id for u in fitted._val["dev-clean"].utts]
    with pytest.raises(FileNotFoundError, match="train-gone"):
        make_dm(tree, train_splits=["train-gone"], val_splits=[], val_fraction=0.2).setup("validate")
    held = make_dm(tree, val_splits=[], val_fraction=0.2, seed=3)
    held.setup("validate")
    carved = make_dm(tree, val_splits=[], val_fraction=0.2, seed=3)
    carved.setup("fit")
    assert [u.utt_id for u in held._val["heldout"].utts] == [u.utt_id for u in carved._val["heldout"].utts]


def test_unset_val_splits_takes_dev_clean_or_holds_out_with_a_warning(tree, tmp_path):
    """Without data.val_splits: dev-clean where it exists; else a hold-out, with a warning (not an INFO log, which
    the CLI does not show) unless val_splits is [] (the hold-out asked for)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm = make_dm(tree, val_splits=None)
        dm.setup("fit")
    assert dm.val_split_names == ["dev-clean"] and not [w for w in caught if "validation" in str(w.message)]
    audio = sorted((tree.root / "train-clean-100").rglob("*.flac"))
    rows = [{"audio_filepath": str(p), "text": tree.texts[p.stem]} for p in audio if p.stem in tree.texts]
    (tmp_path / "train.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    args = dict(manifests={"train": str(tmp_path / "train.json")}, train_splits=["train"], test_splits=[],
                max_duration=3.0, val_fraction=0.2, seed=3)
    dm = ASRDataModule(**args)
    with pytest.warns(UserWarning, match=r"^no validation split: data.val_splits is not set .* 'dev-clean' .*"
                                         r"holding out 2 of 11 .* set it to \[\]"):
        dm.setup("fit")
    assert dm.val_split_names == ["heldout"] and len(dm._train) == 9
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ASRDataModule(**args, val_splits=[]).setup("fit")
    assert not [w for w in caught if "validation" in str(w.message)]


def test_predict_reads_a_nemo_manifest(tree, tmp_path):
    """Relative paths against the manifest's folder, absolute ones as they are, text optional, a missing file
    counted; a line without an audio_filepath is a one-line error when the data module is built."""
    clips = [_wav(tmp_path / "clips" / f"{name}.wav") for name in ("a", "b")]
    elsewhere = sorted((tree.root / "test-ogg").rglob("*.ogg"))[0]
    rows = [{"audio_filepath": "clips/a.wav", "duration": 0.5, "text": "alpha"}, {"audio_filepath": str(elsewhere)},
            {"audio_filepath": "clips/gone.wav"}, {"audio_filepath": "clips/b.wav", "text": ""}]
    for suffix in (".json", ".jsonl"):
        manifest = tmp_path / f"inputs{suffix}"
        manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
        dm = ASRDataModule(predict_path=str(manifest), batch_size=2)
        dm.setup("predict")
        batches = drain(dm, dm.predict_dataloader())
        assert sorted(p for b in batches for p in b.get("audio_filepath", [])) == sorted(map(str, [*clips, elsewhere]))
        assert dm.split_stats["predict"]["skipped"] == {"no_audio": 1}
    (tmp_path / "bad.jsonl").write_text('{"audio_filepath": "clips/a.wav"}\n{"text": "no path"}\n')
    one_line = rf"^{re.escape(str(tmp_path / 'bad.jsonl'))}:2: not a manifest line with 'audio_filepath' " \
               rf"\(no 'audio_filepath'\)$"
    with pytest.raises(ValueError, match=one_line):
        ASRDataModule(predict_path=str(tmp_path / "bad.jsonl"))


def test_max_frames_budget(tree):
    dm = make_dm(tree, max_frames=400)
    dm.setup("fit")
    dm.setup("test")
    batches = drain(dm, dm.train_dataloader())
    assert sum(len(b["utt_ids"]) for b in batches) == 10
    for batch in batches:
        assert batch["features"].shape[0] * batch["features"].shape[1] <= 400
    for loader in dm.test_dataloader():
        for batch in drain(dm, loader):
            assert batch["features"].shape[0] == 1 or batch["features"].shape[0] * batch["features"].shape[1] <= 400


def test_a_frame_budget_below_the_longest_training_utterance_is_refused_in_setup(tree):
    """Refused where the sampler was built, in the training loader's hook, it had reached the user as a traceback."""
    dm = make_dm(tree, max_frames=400)
    dm.setup("fit")
    longest = max(dm._lengths(dm._train, shuffle=True))
    with pytest.raises(ValueError, match=rf"^data.max_frames={longest - 1} is smaller than the longest training "
                                         rf"utterance \({longest} frames, at the slowest speed perturbation\)"):
        make_dm(tree, max_frames=longest - 1).setup("fit")
    make_dm(tree, max_frames=longest).setup("fit")


def test_ranks_from_trainer_split_the_data(tree):
    per_rank = []
    for rank in range(2):
        dm = make_dm(tree, batch_size=2)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        dm.setup("fit")
        dm.setup("test")
        train = [u for b in drain(dm, dm.train_dataloader()) for u in b["utt_ids"]]
        test = [u for b in drain(dm, dm.test_dataloader()[0]) for u in b["utt_ids"]]
        per_rank.append((train, test, len(dm.train_dataloader())))
    (train0, test0, n0), (train1, test1, n1) = per_rank
    assert n0 == n1  # equal step counts: no DDP hang
    assert not set(train0) & set(train1)
    assert not set(test0) & set(test1) and sorted(test0 + test1) == sorted(ids_of(tree, "test-8k"))


def test_predict_folder_file_and_list(tree, tmp_path):
    folder = tree.root / "test-ogg"
    files = sorted(str(p) for p in folder.rglob("*.ogg"))
    listing = tmp_path / "inputs.txt"
    rel = Path(files[0]).relative_to(tree.root)
    (tree.root / "inputs.lst").write_text(f"# audio to transcribe\n{rel}\n\n{files[1]}\nnot/there.wav\n")
    listing.write_text(f"{files[2]}\n")
    cases = {str(folder): files, files[0]: files[:1], str(tree.root / "inputs.lst"): files[:2]}
    for path, expected in cases.items():
        dm = ASRDataModule(predict_path=path, batch_size=2)
        dm.setup("predict")
        batches = [b for b in drain(dm, dm.predict_dataloader()) if "features" in b]  # not there.wav: "failed" only
        assert set(batches[0]) == {"features", "feature_lengths", "audio_filepath"}
        assert sorted(p for b in batches for p in b["audio_filepath"]) == sorted(expected)
        for b in batches:
            assert b["features"].shape == (len(b["audio_filepath"]), int(b["feature_lengths"].max()), 80)
    assert dm.split_stats["predict"]["skipped"] == {"no_audio": 1}


def test_subword_vocabulary(tree, tmp_path):
    dm = make_dm(tree, vocab="bpe", vocab_size=40, cache_dir=str(tmp_path))
    dm.prepare_data()
    assert len(list(tmp_path.glob("bpe40-*.json"))) == 1
    dm.setup("fit")
    assert dm.num_classes == len(dm.vocab) > 29
    for batch in drain(dm, dm.val_dataloader()[0]):
        check_batch(dm, batch, tree)
    assert dm.vocab.encode("THE FOX") != dm.vocab.encode("T H E F O X")


def test_hub_split_through_datasets(tree, monkeypatch):
    datasets = pytest.importorskip("datasets")
    dev = sorted((tree.root / "dev-clean").rglob("*.wav"))
    table = datasets.Dataset.from_dict(
        {"audio": [{"bytes": p.read_bytes(), "path": None} for p in dev],
         "text": [tree.texts[p.stem] for p in dev], "id": [p.stem for p in dev]},
        features=datasets.Features({"audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
                                    "text": datasets.Value("string"), "id": datasets.Value("string")}),
    ).cast_column("audio", datasets.Audio())  # as a hub split arrives (decoding needs torchcodec: not used)
    calls = []

    def fake_load_dataset(name, config, split):
        calls.append((name, config, split))
        return table

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    dm = ASRDataModule(hub_id="someone/speech", hub_config="clean", train_splits=["validation"],
                       val_splits=["validation"], test_splits=[], batch_size=2)
    dm.setup("fit")
    assert calls == [("someone/speech", "clean", "validation")]  # read once, reused
    for batch in drain(dm, dm.val_dataloader()[0]):
        check_batch(dm, batch, tree)


class _TinyCTC(L.LightningModule):
    """Linear CTC model that records what the loops hand it."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(80, num_classes)
        self.seen: dict[str, list] = {"train": [], "val": [], "test": []}

    def _loss(self, batch):
        logp = self.proj(batch["features"]).log_softmax(-1)
        return torch.nn.functional.ctc_loss(logp.transpose(0, 1), batch["targets"], batch["feature_lengths"],
                                            batch["target_lengths"], zero_infinity=True)

    def training_step(self, batch, batch_idx):
        if batch is None:
            return None
        self.seen["train"].append(sorted(batch))
        return self._loss(batch)

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.seen["val"].append((dataloader_idx, len(batch["utt_ids"])))

    def test_step(self, batch, batch_idx, dataloader_idx=0):
        self.seen["test"].append((dataloader_idx, len(batch["utt_ids"])))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_trainer_round_trip(tree):
    dm = make_dm(tree)
    model = _TinyCTC(dm.num_classes)
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False,
                        num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    trainer.test(model, datamodule=dm, verbose=False)
    assert model.seen["train"] and all("load_errors" not in keys for keys in model.seen["train"])
    assert sum(n for _, n in model.seen["val"]) == 3
    per_loader = {i: sum(n for j, n in model.seen["test"] if j == i) for i in (0, 1)}
    assert per_loader == {0: 5, 1: 3}
    assert dm.load_failures == [CORRUPT]


def test_predict_input_naming_no_audio_is_a_one_line_error_at_build(tree, tmp_path):
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    (tmp_path / "no_audio").mkdir()
    (tmp_path / "no_audio" / "notes.txt").write_text("x")
    cases = {"empty.txt": r"lists no audio file", "no_audio": r"holds no audio file", "gone.wav": r"does not exist"}
    for name, reason in cases.items():
        one_line = rf"^predict_path \S*{name} {reason} \(expected [^\n]*\)$"
        with pytest.raises((ValueError, FileNotFoundError), match=one_line):
            make_dm(tree, vocab="bpe", predict_path=str(tmp_path / name))  # before any training data is read


def test_subword_vocabulary_is_cached_in_the_user_cache_not_the_data(tree, monkeypatch, tmp_path):
    monkeypatch.setenv("INFOMAMBA_CACHE", str(tmp_path / "cache"))
    before = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in [tree.base, *tree.base.rglob("*")]}
    dm = make_dm(tree, vocab="bpe", vocab_size=40)
    dm.prepare_data()
    dm.setup("fit")
    assert len(list((tmp_path / "cache" / "asr").glob("bpe40-*.json"))) == 1
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in [tree.base, *tree.base.rglob("*")]} == before


def test_setup_prints_a_dataset_summary(tree, caplog):
    dm = make_dm(tree)
    with caplog.at_level(logging.INFO):
        dm.setup("fit")
        dm.setup("test")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ASR data: ")]
    assert len(lines) == 2
    fit, test = lines
    assert "train-clean-100 11 utterances" in fit and "dev-clean 3 utterances" in fit
    assert "no_transcript=1" in fit and "unreadable=1" in fit and "training set 11 utterances" in fit
    assert "vocabulary char (29 symbols, blank included)" in fit
    assert "test-8k 5 utterances" in test and "test-ogg 3 utterances" in test
    assert re.search(r"dev-clean 3 utterances \(\d\.\d s\)", fit), fit  # seconds of audio: not "0.00 h"


def test_summary_amounts_read_in_the_unit_of_their_size():
    assert [utterances(n) for n in (0, 1, 2)] == ["0 utterances", "1 utterance", "2 utterances"]
    assert [audio_time(s) for s in (4.24, 59.9, 90.0, 359.0, 360.0, 7200.0)] == [
        "4.2 s", "59.9 s", "1.5 min", "6.0 min", "0.10 h", "2.00 h"]


def test_pad_multiple_rounds_frames_up_and_the_model_reads_only_the_real_ones():
    """Frames padded up to a multiple of 16: the same features and lengths, zeros after them, and the recogniser's
    log-probabilities over each utterance's real outputs unchanged by the extra padding."""
    torch.manual_seed(0)
    items = [{"utt_id": u, "features": torch.randn(n, 80), "targets": torch.tensor([1, 2]), "transcript": "ab"}
             for u, n in (("a", 37), ("b", 21))]
    plain, padded = collate_asr(items), collate_asr(items, pad_multiple=16)
    assert plain["features"].shape[1] == 37 and padded["features"].shape[1] == 48
    assert torch.equal(padded["features"][:, :37], plain["features"]) and not padded["features"][:, 37:].any()
    assert torch.equal(padded["feature_lengths"], plain["feature_lengths"])
    model = CTCSpeechRecognizer(EncoderConfig(dim=32, depth=2, mixer_options={"k_max": 8, "d_state": 4}),
                                LossWeights(use_nce=False), spec_augment=False).eval()
    with torch.no_grad():
        a, lengths, _ = model(plain["features"], plain["feature_lengths"])
        b, padded_lengths, _ = model(padded["features"], padded["feature_lengths"])
    assert torch.equal(lengths, padded_lengths) and b.shape[1] > a.shape[1]
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(b[row, :n], a[row, :n], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="pad_multiple"):
        ASRDataModule(root="unused", pad_multiple=0)


def test_speed_and_telephone_draws_depend_on_the_batch_not_on_the_worker(tree):
    """Augmented training features with one loader worker or two, and after a resume at batch 2, are equal."""
    def features(workers, resume_at=0):
        torch.manual_seed(0)
        dm = make_dm(tree, num_workers=workers, speed_perturb=[0.9, 1.0, 1.1], telephone_prob=0.5)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.batch_sampler.load_state_dict({"epoch": 1, "batch": resume_at})
        batches = [batch["features"] for batch in drain(dm, loader)]
        loader._iterator._shutdown_workers()  # the persistent workers now, not in a finaliser (a teardown race)
        return batches

    one = features(1)
    assert len(one) > 2
    for resumed_at, batches in ((0, features(2)), (2, features(2, resume_at=2))):
        assert all(torch.equal(a, b) for a, b in zip(batches, one[resumed_at:], strict=True))


def test_a_checkpoints_vocabulary_replaces_the_one_the_splits_were_built_with(tree, tmp_path):
    trained = make_dm(tree, vocab="bpe", vocab_size=40, cache_dir=str(tmp_path))
    trained.prepare_data()
    state = trained.state_dict()  # what a fit's checkpoint keeps
    dm = make_dm(tree)  # data.vocab=char: what a changed config would build
    dm.setup("fit")
    dm.setup("test")
    assert dm.state_dict()["vocab"] != state["vocab"]
    with pytest.warns(UserWarning, match="checkpoint's vocabulary differs"):
        dm.load_state_dict(state)  # as Lightning does after setup in a run given the checkpoint
    assert dm.state_dict() == state
    for loader in (dm.train_dataloader(), *dm.val_dataloader(), *dm.test_dataloader()):
        for batch in drain(dm, loader):
            check_batch(dm, batch, tree)  # targets decode with the checkpoint's subwords
            assert int(batch["target_lengths"].sum()) < sum(len(t) for t in batch["transcripts"])
    dm.load_state_dict(state)  # the same state again (the CLI's call, then Lightning's) changes nothing


def test_a_manifests_files_of_one_name_in_different_folders_are_all_kept(tmp_path):
    """spk1/001.wav and spk2/001.wav had one id (the file name): the second was skipped as a duplicate."""
    rows = [{"audio_filepath": str(_wav(tmp_path / spk / "001.wav").relative_to(tmp_path)), "text": spk}
            for spk in ("alpha", "bravo")]
    rows.append(rows[0])  # the same file listed again: a duplicate
    (tmp_path / "m.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    utts, skips = read_manifest(tmp_path / "m.json")
    assert [u.text for u in utts] == ["ALPHA", "BRAVO"]
    assert dict(skips.counts) == {"duplicate_id": 1} and "m.json:3" in skips.describe()


def test_manifest_durations_that_disagree_with_the_audio_are_a_one_line_error_naming_the_line(tmp_path):
    """Durations ten times too large had dropped most of a split as too long, with only a skip count to show; within
    0.1 s they pass (a manifest rounds them), and a line past the checked ones is not read."""
    rows = [{"audio_filepath": str(_wav(tmp_path / f"{i}.wav", seconds=1.0).name), "text": "alpha", "duration": d}
            for i, d in enumerate([1.04, 1.0, 10.0])]
    (tmp_path / "m.json").write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(ValueError) as info:
        read_manifest(tmp_path / "m.json")
    assert str(info.value) == (f"{tmp_path / 'm.json'}:3: 'duration' is 10 s but {tmp_path / '2.wav'} holds 1.00 s of "
                               "audio; fix the manifest's durations, or leave them out to read them from the files")
    checked = [{"audio_filepath": _wav(tmp_path / f"c{i}.wav", seconds=1.0).name, "text": "alpha", "duration": 1.0}
               for i in range(8)]
    (tmp_path / "n.json").write_text("".join(json.dumps(row) + "\n" for row in [*checked, rows[2]]))
    utts, _ = read_manifest(tmp_path / "n.json")
    assert [u.duration for u in utts] == [1.0] * 8 + [10.0]


def test_an_evaluation_split_left_with_no_usable_utterance_is_an_error_naming_it(tmp_path):
    """A test split whose every transcript held a digit came out as a traceback from the loader ("max() arg is an
    empty sequence", or the sampler's "got no samples"), naming neither the split nor why it was empty."""
    _wav(tmp_path / "a.wav")
    (tmp_path / "train.json").write_text(json.dumps({"audio_filepath": "a.wav", "text": "alpha"}) + "\n")
    (tmp_path / "test.json").write_text(json.dumps({"audio_filepath": "a.wav", "text": "room 101"}) + "\n")
    dm = ASRDataModule(manifests={"tr": str(tmp_path / "train.json"), "te": str(tmp_path / "test.json")},
                       train_splits=["tr"], val_splits=[], test_splits=["te"], max_frames=1000)
    with pytest.raises(ValueError) as info:
        dm.setup("test")
    assert str(info.value) == (f"no usable utterance in split 'te' (data.manifests.te {tmp_path / 'test.json'}: "
                               "skipped oov=1)")


def test_an_empty_manifest_is_named_with_its_key_and_file(tmp_path):
    """It had been "split 'dev' has no usable utterance (empty)", and an empty training manifest "no usable training
    utterances in ['tr']; see the skip log", naming no file (and no skip log was written)."""
    _wav(tmp_path / "a.wav")
    (tmp_path / "train.json").write_text(json.dumps({"audio_filepath": "a.wav", "text": "alpha"}) + "\n")
    (tmp_path / "dev.json").write_text("")
    dm = ASRDataModule(manifests={"tr": str(tmp_path / "train.json"), "dev": str(tmp_path / "dev.json")},
                       train_splits=["tr"], val_splits=["dev"], test_splits=[], max_frames=1000)
    with pytest.raises(ValueError) as info:
        dm.setup("fit")
    assert str(info.value) == f"no usable utterance in split 'dev' (data.manifests.dev {tmp_path / 'dev.json'}: empty)"
    dm = ASRDataModule(manifests={"tr": str(tmp_path / "dev.json")}, train_splits=["tr"], val_splits=[],
                       test_splits=[], max_frames=1000)
    with pytest.raises(ValueError) as info:
        dm.setup("fit")
    assert str(info.value) == (f"no usable training utterance in split 'tr' (data.manifests.tr "
                               f"{tmp_path / 'dev.json'}: empty)")
