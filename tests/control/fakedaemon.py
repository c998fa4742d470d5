"""A fake daemon: the real ControlServer with canned handlers, in a thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from carpctl.control.server import ControlServer, Handler

Canned = Mapping[str, Any]  # command -> a result dict, or an exception to raise


class FakeDaemon:
    """``with FakeDaemon(path, handlers) as daemon:`` serves until the block ends.

    ``canned`` answers a command with a fixed result (or raises the given
    exception); every validated request is recorded in ``requests``.
    """

    def __init__(
        self,
        path: Path,
        handlers: Mapping[str, Handler] | None = None,
        *,
        canned: Canned | None = None,
        read_timeout: float = 5.0,
        log: Any = None,
    ) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        all_handlers = dict(handlers or {})
        for command, answer in (canned or {}).items():
            all_handlers[command] = self._canned(command, answer)
        self.server = ControlServer(path, all_handlers, read_timeout=read_timeout, log=log)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def _canned(self, command: str, answer: Any) -> Handler:
        async def handler(args: dict[str, Any]) -> Mapping[str, Any]:
            self.requests.append((command, args))
            if isinstance(answer, BaseException):
                raise answer
            result: Mapping[str, Any] = answer
            return result

        return handler

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        try:
            await self.server.start()
        except BaseException as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        await self._stop.wait()
        await self.server.close()

    def __enter__(self) -> FakeDaemon:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            self._thread.join(10)
            raise self._error
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
