"""Read the next batch of a file while the last one is being measured.

polars decodes a batch without holding the GIL and numpy's reductions release it too, so a
thread that pulls the next batch while the scan computes the statistics of the last one keeps
both cores busy. At most `depth` batches wait in the queue (plus the one being read and the one
being measured): memory stays bounded.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_END = object()


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """The items of `items` in order, pulled by a background thread up to `depth` ahead. An
    exception raised while pulling is raised here, at its place in the order; closing this
    iterator (or leaving a loop over it) stops the thread after the item it is reading."""
    box: queue.Queue = queue.Queue(maxsize=max(1, depth))
    done = threading.Event()

    def put(entry: tuple) -> bool:
        while not done.is_set():
            try:
                box.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((None, exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="nandoc-read", daemon=True)
    worker.start()
    try:
        while True:
            item, exc = box.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
    finally:
        done.set()
        worker.join()
