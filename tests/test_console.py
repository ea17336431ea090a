"""infomamba.console.say: a line starts a line of its own, also while a progress bar is drawn; a reader that went
away drops the line, not the program."""
import io
import os
import sys
import warnings

from tqdm import tqdm

from infomamba import console
from infomamba.console import PYTHON_FORMAT, PipeSafe, format_warning, guard_pipes, say


def test_a_line_said_under_a_progress_bar_starts_its_own_line(monkeypatch):
    terminal = io.StringIO()  # stdout and stderr mixed, as on a terminal
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = tqdm(total=10, file=sys.stderr, ascii=True)
    bar.update(3)
    say("[infomamba] epoch 0 done")
    bar.update(1)
    bar.close()
    before, after = terminal.getvalue().split("[infomamba] epoch 0 done\n")
    assert before.endswith("\r") and before.rstrip("\r").rstrip(" ").endswith("\r")  # the bar's line was blanked
    assert "3/10" in after  # and drawn again below the line


def test_without_a_bar_the_line_is_one_write(monkeypatch):
    writes = []

    class Recorder(io.StringIO):
        def write(self, s):
            writes.append(s)
            return len(s)

    monkeypatch.setattr(sys, "stdout", Recorder())
    say("one line")
    assert writes == ["one line\n"]


def test_a_line_to_another_stream_is_one_write_there(monkeypatch):
    """Diagnostics (kernel paths) go to stderr, with the same single write; stdout gets nothing."""
    writes = {"out": [], "err": []}

    class Recorder(io.StringIO):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def write(self, s):
            writes[self.name].append(s)
            return len(s)

    monkeypatch.setattr(sys, "stdout", Recorder("out"))
    monkeypatch.setattr(sys, "stderr", Recorder("err"))
    say("a diagnostic", file=sys.stderr)
    assert writes == {"out": [], "err": ["a diagnostic\n"]}


def test_a_reader_that_died_drops_the_lines_and_later_writes_do_not_raise(monkeypatch):
    """`infomamba fit ... | tee log` with tee killed: stdout is a pipe with no reader (EPIPE). The lines are
    dropped, and the stream no longer raises for anyone (a print, a progress bar, the flush at exit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = open(write_end, "w")
    monkeypatch.setattr(sys, "stdout", stream)
    say("epoch 0 done")
    say("epoch 1 done")
    print("a plain print", file=stream, flush=True)
    stream.close()


def test_a_closed_stream_drops_the_line(monkeypatch):
    stream = io.StringIO()
    stream.close()
    monkeypatch.setattr(sys, "stdout", stream)
    say("one line")


def test_a_guarded_stream_survives_its_reader_whoever_writes_first(monkeypatch):
    """The first write to meet the dead pipe may be a progress bar's or a print's, not a `say`: a `PipeSafe` stream
    drops it and carries on, where the bare stream raised BrokenPipeError."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    bare = open(write_end, "w")
    monkeypatch.setattr(sys, "stdout", bare)
    monkeypatch.setattr(sys, "stderr", sys.stderr)
    guard_pipes()
    guard_pipes()  # once is enough: not wrapped twice
    assert isinstance(sys.stdout, PipeSafe) and sys.stdout._stream is bare
    for step in tqdm(range(3), file=sys.stdout, mininterval=0):
        print(f"step {step}", flush=True)
    say("done")
    assert not sys.stdout.closed and sys.stdout.fileno() == write_end
    bare.close()


def test_a_warning_from_another_library_keeps_pythons_format():
    ours = format_warning("ours", UserWarning, console.__file__, 12, "rank_zero_warn(...)")
    assert ours == "[infomamba] warning: ours\n"
    assert format_warning("deprecated", FutureWarning, console.__file__, 12) == \
        "[infomamba] FutureWarning: deprecated\n"
    assert format_warning("theirs", UserWarning, warnings.__file__, 3, "warn(...)") == \
        PYTHON_FORMAT("theirs", UserWarning, warnings.__file__, 3, "warn(...)")
