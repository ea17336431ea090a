"""benchmarks/build_speech_extra.py: the checks that keep the shipped speech set's test splits untouched and its
speech reproduced, the parts, and the utterance ids (no espeak-ng needed: the synthesis itself is not run)."""
import pytest

from benchmark_scripts import load

bx = load("build_speech_extra")


def utt(text, spk=1000, speed=150, pitch=50):
    return {"text": text, "trans": text.upper(), "voice": "en-us", "variant": "m1", "speed": speed, "pitch": pitch,
            "spk": spk, "src": "fortunes/x#1"}


def meta_row(u):
    return {"espeak_text": u["text"], "voice": u["voice"], "variant": u["variant"], "speed_wpm": str(u["speed"]),
            "pitch": str(u["pitch"])}


def test_meta_is_read_without_quoting(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text('utt_id\tespeak_text\n1-1-0000\tHe said "no", twice.\n1-1-0001\tAnd "then\n')
    rows = bx.read_meta(path)
    assert [r["espeak_text"] for r in rows] == ['He said "no", twice.', 'And "then']


def test_the_plan_must_reproduce_the_shipped_rows_in_order():
    planned = [utt("one two three four"), utt("five six seven eight"), utt("nine ten eleven twelve")]
    shipped = [meta_row(u) for u in planned[:2]]
    bx.check_reproduces(planned, shipped, "train-synth")  # the plan goes on past the shipped rows: fine
    other_speed = [shipped[0], {**shipped[1], "speed_wpm": "151"}]
    with pytest.raises(SystemExit, match="row 2 of meta/train-synth.tsv differs"):
        bx.check_reproduces(planned, other_speed, "train-synth")
    with pytest.raises(SystemExit, match="row 1 of meta/test-synth.tsv differs"):
        bx.check_reproduces(planned[1:], shipped, "test-synth")
    with pytest.raises(SystemExit, match="row 3 of meta/train-synth.tsv differs"):  # the plan ends early
        bx.check_reproduces(planned[:2], [*shipped, meta_row(planned[2])], "train-synth")


def test_parts_are_consecutive_and_sized_by_the_estimate():
    extra = [utt(f"s{i}") for i in range(10)]
    parts = bx.split_parts(extra, [0.5 / 60, 1.0 / 60], seconds=lambda u: 10.0)  # 30 s, then 60 s
    assert [len(p) for p in parts] == [3, 6] and parts[0] + parts[1] == extra[:9]
    with pytest.raises(SystemExit, match="ran out after 10 new utterances"):
        bx.split_parts(extra, [1.0 / 60, 1.0 / 60], seconds=lambda u: 10.0)


def test_chapters_never_repeat_a_shipped_or_another_parts_id():
    ids = set()
    for index in (1, 2):
        part = [utt(f"s{i}", spk=1000 + i % 3) for i in range(11)]
        bx.number_chapters(part, index)
        made = {f"{u['spk']}-{u['chap']}-{u['utt']:04d}" for u in part}
        assert len(made) == 11 and not made & ids
        ids |= made
        for u in part:
            assert u["chap"] // 100 == u["spk"] and u["chap"] % 100 in (10 * index, 10 * index + 1)
    shipped_chapters = {spk * 100 + c for spk in (1000, 1001, 1002) for c in (1, 2)}
    assert not shipped_chapters & {int(i.split("-")[1]) for i in ids}


def test_the_shipped_folder_is_never_the_output(tmp_path):
    with pytest.raises(SystemExit, match="is the shipped set"):
        bx.main(["--source", str(tmp_path), "--out", str(tmp_path / "."), "--hours", "1"])
