"""Produce the items of an iterator in a background thread, a few ahead of their consumer."""

from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
_END = object()


def prefetch(items: Iterable[T], depth: int, name: str = "audiogen-prefetch") -> Iterator[T]:
    """Yield ``items`` in order while a thread produces up to ``depth`` of them ahead (``audiogen encode`` reads
    and resamples the next files while the encoder runs: decoding, resampling and torch release the GIL).

    Whatever producing an item raises (KeyboardInterrupt included) is raised here, in that item's place. Closing
    the generator, or an exception in the consumer, stops the thread after the item it is producing."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
            put((True, _END))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, who raises it
            put((False, exc))

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        thread.join()
