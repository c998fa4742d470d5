"""The lab side of the client's reachability prober.

``Prober`` runs ``python -m carpctl.lab.icmp`` (an ICMP echo every 10 ms by
default) in the client namespace and collects its replies in a thread:
which request got an answer, when (``time.monotonic()``), and from which
MAC. ``wait_reply(sent_after=t)`` answers "when did the client first reach
the VIP again after the crash at t, and through whom".
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carpctl.lab.topology import Cluster


@dataclass(frozen=True)
class Reply:
    seq: int
    sent: float  # time.monotonic() when the request left
    received: float  # time.monotonic() when the reply arrived
    mac: str  # Ethernet source of the reply ("" if unknown)
    source: str

    @property
    def rtt(self) -> float:
        return self.received - self.sent


def probe_argv(target: str, *options: str) -> list[str]:
    """The argv of the echo program (``carpctl.lab.icmp``) probing ``target``."""
    return [sys.executable, "-m", "carpctl.lab.icmp", *options, target]


class Prober:
    """Probe ``target`` from a lab host every ``interval`` seconds, in the background."""

    def __init__(
        self, cluster: Cluster, target: str, interval: float = 0.01, host: str = "client"
    ) -> None:
        self.cluster, self.target, self.interval, self.host = cluster, target, interval, host
        self.replies: list[Reply] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> Prober:
        argv = probe_argv(self.target, "--interval", str(self.interval))
        self._process = self.cluster.net.spawn(
            self.cluster.namespace(self.host), argv, stdout=subprocess.PIPE, detach=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            with contextlib.suppress(ValueError, KeyError):
                event = json.loads(line)
                if event.get("event") == "reply":
                    reply = Reply(
                        int(event["seq"]),
                        float(event["sent"]),
                        float(event["received"]),
                        str(event.get("mac", "")),
                        str(event.get("from", "")),
                    )
                    with self._changed:
                        self.replies.append(reply)
                        self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def last_reply(self) -> Reply | None:
        with self._changed:
            return self.replies[-1] if self.replies else None

    def wait_reply(self, sent_after: float, timeout: float, mac: str | None = None) -> Reply | None:
        """The first reply to a request sent at or after ``sent_after`` (from ``mac``)."""
        deadline = time.monotonic() + timeout

        def found() -> Reply | None:
            for reply in self.replies:
                if reply.sent >= sent_after and (mac is None or reply.mac == mac):
                    return reply
            return None

        with self._changed:
            while (reply := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.running:
                    return None
                self._changed.wait(min(remaining, 0.05))
            return reply

    def replies_between(self, start: float, end: float) -> list[Reply]:
        with self._changed:
            return [r for r in self.replies if start <= r.sent < end]

    def stop(self) -> None:
        if self._process is not None:
            self.cluster.net.stop(self._process, timeout=2)
        if self._reader is not None:
            self._reader.join(2)

    def __enter__(self) -> Prober:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
