"""infomamba.console.say: a line starts a line of its own, also while a progress bar is drawn."""
import io
import sys

from tqdm import tqdm

from infomamba.console import say


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
