"""Overlap reading, denoising and writing: a reader thread decodes ahead, writer threads encode behind.

The model runs on the calling thread (TensorFlow spreads each call over its own threads); Pillow and NumPy release
the GIL while they decode, convert and encode, so the three stages really run at once. What is read ahead and
what waits to be written is charged to a byte budget, so memory stays bounded however large the folder: the reader
waits while the budget is spent, and a single item larger than the whole budget runs alone. Every event (an item
read, a write finished) comes back to the calling thread, which alone records results and reports progress.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator

STALLED = object()  # yielded when the reader waits for budget held by items the caller is still holding back
READ_DONE = object()  # yielded once, after the reader's last item
_WRITTEN = object()


class ByteBudget:
    """A counter of bytes in flight that makes takers wait until theirs fit (or nothing else is held)."""

    def __init__(self, limit: int):
        self.limit, self.used, self.waiting = max(0, limit), 0, False
        self._changed = threading.Condition()

    def take(self, amount: int, stop: threading.Event) -> bool:
        """Wait until `amount` fits; False if stopped first."""
        with self._changed:
            while amount and self.used and self.used + amount > self.limit and not stop.is_set():
                self.waiting = True
                self._changed.wait(0.1)
            self.waiting = False
            if stop.is_set():
                return False
            self.used += amount
            return True

    def give_back(self, amount: int) -> None:
        with self._changed:
            self.used -= amount
            self._changed.notify_all()


class Pipeline:
    """A reader thread, a pool of writer threads and a byte budget, driven from one calling thread."""

    def __init__(self, budget_bytes: int, writers: int = 2):
        self.budget = ByteBudget(budget_bytes)
        self._events: queue.Queue = queue.Queue()
        self._writers = ThreadPoolExecutor(max(1, writers), thread_name_prefix="denoise-write")
        self._stop = threading.Event()
        self._reader: threading.Thread | None = None
        self._writes_in_flight = 0
        self._held: dict[int, int] = {}  # bytes charged per item key, given back by release()
        self._held_lock = threading.Lock()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc_info) -> None:
        # On an error or Ctrl-C the reader stops at its next item; writes already started finish (they are atomic).
        self._stop.set()
        self._writers.shutdown(wait=True)
        if self._reader is not None:
            self._reader.join()

    def read(self, items: Iterable, cost: Callable[[object], tuple[int, int]], load: Callable[[object], object]):
        """Start the reader: for each item, charge cost(item) -> (key, bytes) to the budget, then send load(item)."""
        def work() -> None:
            try:
                for item in items:
                    key, amount = cost(item)
                    if not self.budget.take(amount, self._stop):
                        return
                    self._charge(key, amount)
                    self._events.put(load(item))
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
                self._events.put(exc)
            finally:
                self._events.put(READ_DONE)

        self._reader = threading.Thread(target=work, name="denoise-read", daemon=True)
        self._reader.start()

    def write(self, work: Callable[[], object]) -> None:
        """Run work() on a writer thread; its return value comes back through events()."""
        self._writes_in_flight += 1

        def run() -> None:
            try:
                self._events.put((_WRITTEN, work()))
            except BaseException as exc:  # noqa: BLE001
                self._events.put((_WRITTEN, exc))

        self._writers.submit(run)

    def release(self, key: int) -> None:
        """Give back what was charged for the item with this key (once its result is final)."""
        with self._held_lock:
            amount = self._held.pop(key, 0)
        if amount:
            self.budget.give_back(amount)

    def events(self) -> Iterator[object]:
        """Loaded items, READ_DONE, write results and STALLED, until reading and every write are done."""
        read_done = False
        while not read_done or self._writes_in_flight:
            try:
                event = self._events.get(timeout=0.05)
            except queue.Empty:
                if self.budget.waiting:
                    yield STALLED
                continue
            if isinstance(event, tuple) and len(event) == 2 and event[0] is _WRITTEN:
                self._writes_in_flight -= 1
                event = event[1]
            if isinstance(event, BaseException):
                raise event
            read_done = read_done or event is READ_DONE
            yield event

    def finish_writes(self) -> list[object]:
        """After an interruption: stop reading, wait for the writes already handed over, return their results.

        Items read but not yet denoised are dropped. Counting on the writer pool rather than on events() keeps this
        right even if the interruption struck events() halfway through taking one.
        """
        self._stop.set()
        self._writers.shutdown(wait=True)
        results = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return results
            if isinstance(event, tuple) and len(event) == 2 and event[0] is _WRITTEN:
                if not isinstance(event[1], BaseException):
                    results.append(event[1])

    def _charge(self, key: int, amount: int) -> None:
        with self._held_lock:
            self._held[key] = self._held.get(key, 0) + amount
