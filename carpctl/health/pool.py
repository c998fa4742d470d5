"""A bounded pool of daemon worker threads that probes can hang in.

``concurrent.futures.ThreadPoolExecutor`` joins its workers at interpreter
exit, so one probe stuck forever (a stat on a dead NFS mount, an HTTP
server trickling headers) would keep carpctl from ever exiting. These
workers are daemon threads: a hung one is abandoned by the runner and
dies with the process. Threads are started lazily, only when no idle one
is there, up to ``max_workers``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_Item = tuple["Future[Any]", Callable[[], Any]] | None


class WorkerPool:
    def __init__(self, max_workers: int, name: str = "carpctl-probe") -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.max_workers, self.name = max_workers, name
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # one release per worker waiting for work
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def threads(self) -> int:
        """How many worker threads were started (idle, busy or hung)."""
        return len(self._threads)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool is shut down")
            self._queue.put((future, fn))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        return future

    def shutdown(self) -> None:
        """Let idle workers exit; busy ones finish, hung ones are left to die with the process."""
        with self._lock:
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn()
                except BaseException as error:  # handed to whoever awaits the future
                    future.set_exception(error)
                else:
                    future.set_result(result)
            del item, future, fn
            self._idle.release()
