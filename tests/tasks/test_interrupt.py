import signal

import pytest

from infomamba.tasks.interrupt import StopOnSignal


def test_a_second_ctrl_c_goes_to_the_handler_the_fit_started_with():
    """The CLI's handler notes the Ctrl-C, so that the exit after it is 130; StopOnSignal had raised past it, and a
    fit stopped by a second Ctrl-C exited with 1, read as a failure."""
    seen = []

    def before(signum, frame):
        seen.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, before)
    try:
        stop = StopOnSignal()
        stop.on_train_start(None, None)
        handler = signal.getsignal(signal.SIGINT)
        handler(signal.SIGINT, None)
        assert seen == []
        with pytest.raises(KeyboardInterrupt):
            handler(signal.SIGINT, None)
        assert seen == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, previous)
