"""Ctrl-C that asks a long job to stop at its next safe point, instead of raising inside TensorFlow."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def stop_on_ctrl_c(requested: threading.Event | None = None):
    """Yield an Event that the first Ctrl-C sets; the job reads it between steps. A second Ctrl-C stops at once.

    Raised inside TensorFlow or NumPy, a KeyboardInterrupt surfaces as an unrelated error (seen: a SystemError
    "returned a result with an exception set" in the middle of a model call), which would fail a file or a step
    and let the job go on. Off the main thread, where signal handlers cannot be set, or where SIGINT is ignored (a
    background job), the handlers are left as they are.
    """
    requested = requested if requested is not None else threading.Event()
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        yield requested
        return

    def ask_to_stop(signum, frame):
        requested.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, ask_to_stop)
    try:
        yield requested
    finally:
        signal.signal(signal.SIGINT, previous)
