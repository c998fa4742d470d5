"""The client's HTTP prober for the services benchmark, run in the lab's client namespace.

    python bench/http_probe.py ADDRESS PORT [--path /who] [--interval 0.01] [--timeout 1]

Every ``--interval`` seconds it opens a new TCP connection to ADDRESS:PORT
(non-blocking: an attempt whose SYN went to a dead node never holds the next
one back; each is dropped after ``--timeout`` s), sends ``GET PATH`` and
reads the answer to its end. Every 200 is printed as a JSON line in
``carpctl.lab.icmp``'s format, so ``carpctl.lab.Prober`` reads it::

    {"event": "reply", "seq": 7, "sent": ..., "received": ..., "mac": BODY, "from": ADDRESS}

``sent``: ``time.monotonic()`` of the connect; ``received``: when the answer
was complete; ``mac``: the body, stripped (the services benchmark serves
the answering node's MAC there). Refused, failed or timed-out attempts
print nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import selectors
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Attempt:
    seq: int
    sent: float
    sock: socket.socket
    data: bytearray = field(default_factory=bytearray)


def answer(data: bytes | bytearray) -> str | None:
    """The body of a 200 answer, else None."""
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    words = head.split(b"\r\n", 1)[0].split()
    if len(words) < 2 or words[1] != b"200":
        return None
    return body.decode(errors="replace").strip()


class Probe:
    def __init__(self, address: str, port: int, path: str, timeout: float) -> None:
        self.target, self.timeout = (address, port), timeout
        self.request = f"GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n".encode()
        self.selector = selectors.DefaultSelector()
        self.attempts: dict[int, Attempt] = {}
        self.seq = 0

    def open(self) -> None:
        self.seq += 1
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        attempt = Attempt(self.seq, time.monotonic(), sock)
        code = sock.connect_ex(self.target)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            return
        self.attempts[attempt.seq] = attempt
        self.selector.register(sock, selectors.EVENT_WRITE, attempt)

    def close(self, attempt: Attempt) -> None:
        self.attempts.pop(attempt.seq, None)
        self.selector.unregister(attempt.sock)
        attempt.sock.close()

    def handle(self, attempt: Attempt, mask: int) -> None:
        sock = attempt.sock
        try:
            if mask & selectors.EVENT_WRITE:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    self.close(attempt)  # refused: the address is up, the server not yet
                    return
                sock.send(self.request)  # a few dozen bytes: one send
                self.selector.modify(sock, selectors.EVENT_READ, attempt)
                return
            chunk = sock.recv(65536)
        except OSError:
            self.close(attempt)
            return
        if chunk:
            attempt.data += chunk
            return
        received = time.monotonic()
        self.close(attempt)
        body = answer(attempt.data)
        if body is not None:
            line = {"event": "reply", "seq": attempt.seq, "sent": attempt.sent,
                    "received": received, "mac": body, "from": self.target[0]}  # fmt: skip
            print(json.dumps(line), flush=True)

    def expire(self, now: float) -> None:
        for attempt in [a for a in self.attempts.values() if now - a.sent > self.timeout]:
            self.close(attempt)

    def run(self, interval: float) -> None:
        due = time.monotonic()
        while True:
            now = time.monotonic()
            if now >= due:
                self.open()
                due += interval
                if due < now:  # fell behind: no burst to catch up
                    due = now + interval
                self.expire(now)
            for key, mask in self.selector.select(max(0.0, due - time.monotonic())):
                self.handle(key.data, mask)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("address")
    parser.add_argument("port", type=int)
    parser.add_argument("--path", default="/who")
    parser.add_argument("--interval", type=float, default=0.01)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        Probe(args.address, args.port, args.path, args.timeout).run(args.interval)


if __name__ == "__main__":
    main()
