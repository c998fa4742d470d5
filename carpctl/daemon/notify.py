"""systemd's notify protocol (sd_notify(3)) for ``carpctl run``, through ``sdnotify``.

The unit is ``Type=notify`` with ``WatchdogSec=`` (units/carpctl.service):

* ``ready(status)`` -- ``READY=1`` once the daemon serves, and again after a
  reload (it ends the ``reloading`` state);
* ``status(line)`` -- the one line ``systemctl status`` shows; ``format_status``
  makes it from the daemon's ``status`` result;
* ``reloading()`` -- ``RELOADING=1`` with ``MONOTONIC_USEC`` on SIGHUP, before
  re-reading the configuration; ``ready()`` must follow, also when the
  reload was refused;
* ``stopping()`` -- ``STOPPING=1`` when the graceful stop begins;
* ``start_watchdog()`` -- ``WATCHDOG=1`` every half ``WATCHDOG_USEC``, sent
  by a task on the event loop: a loop that is stuck stops the pings, and
  systemd kills and restarts the daemon (``Restart=on-failure``).

Outside systemd (no ``NOTIFY_SOCKET``: a terminal, rc.d, the tests) every
call is a no-op. Nothing here blocks: the socket is non-blocking and a
datagram that does not fit is dropped (sdnotify swallows the error), which
the next ping or status line makes good.

Why ``Type=notify`` and ``ExecReload=kill -HUP`` rather than
``Type=notify-reload``: notify-reload needs systemd 253, Debian 12 ships
252. ``RELOADING=1`` is sent anyway, with the ``MONOTONIC_USEC`` that 253+
requires, so switching the unit later needs no code change.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import sdnotify  # type: ignore[import-untyped]

ENVIRONMENT = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
STATUS_MAX = 400  # characters; systemctl shows one line, keep it readable
STATE_ORDER = ("MASTER", "BACKUP", "INIT")
MIN_PING = 0.05  # seconds: a tiny WatchdogSec= must not turn the pinger into a busy loop


def watchdog_interval(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``WATCHDOG_USEC`` (at least MIN_PING).

    None when the watchdog is off: no or an invalid ``WATCHDOG_USEC``, zero,
    or a ``WATCHDOG_PID`` naming another process (the variables were
    inherited from a parent that systemd watches, as sd_watchdog_enabled(3)
    checks).
    """
    raw = environ.get("WATCHDOG_USEC", "")
    try:
        usec = int(raw)
    except ValueError:
        return None
    if usec <= 0:
        return None
    owner = environ.get("WATCHDOG_PID")
    if owner:
        try:
            if int(owner) != (os.getpid() if pid is None else pid):
                return None
        except ValueError:
            return None
    return max(usec / 1_000_000 / 2, MIN_PING)


def format_status(status: Mapping[str, Any]) -> str:
    """The ``STATUS=`` line from the daemon's ``status`` result (control.results.Status).

    Vhids grouped by state, then the demotion and its entries, e.g.
    ``MASTER 1@eth0, BACKUP 2@eth0; demotion 50 (operator 50)``. On a BSD
    backend a kernel demotion that is not carpctl's is added at the end.
    """
    groups: dict[str, list[str]] = {}
    for vhid in status.get("vhids") or ():
        groups.setdefault(str(vhid.get("state", "?")), []).append(str(vhid.get("name", "?")))
    order = [s for s in STATE_ORDER if s in groups] + sorted(set(groups) - set(STATE_ORDER))
    roles = ", ".join(f"{state} {' '.join(groups[state])}" for state in order) or "no vhids"
    demotion = status.get("demotion") or {}
    line = f"{roles}; demotion {demotion.get('total', 0)}"
    entries = demotion.get("entries") or ()
    if entries:
        line += (
            " (" + ", ".join(f"{e.get('name', '?')} {e.get('amount', 0)}" for e in entries) + ")"
        )
    kernel = status.get("kernel")
    if kernel and kernel.get("other"):
        line += f"; kernel {kernel.get('total', 0)} ({kernel['other']} not carpctl's)"
    return one_line(line)


def one_line(text: str) -> str:
    """``text`` as a single ``STATUS=`` line, at most STATUS_MAX characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= STATUS_MAX else flat[: STATUS_MAX - 3] + "..."


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as ``MONOTONIC_USEC=`` wants it."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """The daemon's side of sd_notify; every method is a no-op outside systemd."""

    def __init__(
        self, sender: sdnotify.SystemdNotifier | None, watchdog: float | None = None
    ) -> None:
        self._sender = sender
        self.watchdog_interval = watchdog if sender is not None else None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_status: str | None = None

    @classmethod
    def from_environment(cls) -> Notifier:
        """Read ``NOTIFY_SOCKET``/``WATCHDOG_*`` and remove them from ``os.environ``.

        Removing them (as sd_notify's ``unset_environment`` does) keeps the
        processes carpctl starts -- checks, hooks, ``run`` services -- from
        notifying systemd in carpctl's name.
        """
        sender = _connect() if os.environ.get("NOTIFY_SOCKET") else None
        watchdog = watchdog_interval(os.environ)
        for name in ENVIRONMENT:
            os.environ.pop(name, None)
        return cls(sender, watchdog)

    @property
    def enabled(self) -> bool:
        """True under systemd: notifications go somewhere."""
        return self._sender is not None

    def notify(self, *fields: str) -> None:
        """Send ``fields`` (``NAME=value``) as one datagram; never raises, never blocks."""
        if self._sender is not None:
            # systemd reads UTF-8; sdnotify encodes with Latin-1, so hand it the
            # UTF-8 bytes spelled as Latin-1 characters (they round-trip exactly).
            self._sender.notify("\n".join(fields).encode().decode("latin-1"))

    def ready(self, status: str) -> None:
        """``READY=1`` with a status line: at start-up, and to end a reload."""
        self._last_status = one_line(status)
        self.notify("READY=1", f"STATUS={self._last_status}")

    def status(self, line: str) -> None:
        """``STATUS=line``; sent only when it differs from the last one."""
        line = one_line(line)
        if line != self._last_status:
            self._last_status = line
            self.notify(f"STATUS={line}")

    def reloading(self) -> None:
        """``RELOADING=1``: the configuration is being re-read; call ``ready()`` after."""
        self._last_status = "reloading the configuration"
        self.notify(
            "RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}", f"STATUS={self._last_status}"
        )

    def stopping(self) -> None:
        """``STOPPING=1``: the graceful stop has begun (keep the watchdog going)."""
        self._last_status = "stopping"
        self.notify("STOPPING=1", "STATUS=stopping")

    def start_watchdog(self) -> None:
        """Ping ``WATCHDOG=1`` from the running loop every half ``WATCHDOG_USEC``.

        A no-op when systemd set no watchdog for this process, or when it
        already runs.
        """
        if self.watchdog_interval is not None and not self._running("sd-watchdog"):
            self._spawn(self._ping(self.watchdog_interval), "sd-watchdog")

    def start_status_updates(
        self, source: Callable[[], Awaitable[Mapping[str, Any]]], interval: float = 5.0
    ) -> None:
        """Refresh ``STATUS=`` every ``interval`` s from ``source()`` (the daemon's status).

        Only a changed line is sent. A failing ``source`` skips one round. A
        no-op outside systemd.
        """
        if self.enabled and not self._running("sd-status"):
            self._spawn(self._refresh(source, interval), "sd-status")

    async def close(self) -> None:
        """Stop the watchdog and status tasks and close the socket: last, after the stop."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._sender is not None and self._sender.socket is not None:
            self._sender.socket.close()
        self._sender = None

    def _running(self, name: str) -> bool:
        return any(task.get_name() == name and not task.done() for task in self._tasks)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(coroutine, name=name))

    async def _ping(self, interval: float) -> None:
        while True:
            self.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def _refresh(
        self, source: Callable[[], Awaitable[Mapping[str, Any]]], interval: float
    ) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                line = format_status(await source())
            except Exception:  # a status that cannot be built now: try next round
                continue
            self.status(line)


def _connect() -> sdnotify.SystemdNotifier | None:
    """sdnotify's notifier for NOTIFY_SOCKET, made non-blocking; None if it cannot connect."""
    sender = sdnotify.SystemdNotifier()  # connects to NOTIFY_SOCKET ('@': abstract namespace)
    if sender.socket is None:
        return None
    sender.socket.setblocking(False)
    return sender
