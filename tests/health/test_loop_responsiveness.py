"""200 real HTTP checks, a tenth of them hanging forever, must not delay the event loop.

The loop also sends CARP advertisements, so the test measures how late a
10 ms ``call_later`` tick series fires while the checks run. The server is
a separate process (so its own work does not count against the loop); the
probes share this process and its GIL, as they do in the daemon. Numbers
are printed (``pytest -s``) and only a very generous bound is asserted:
timing thresholds would flake on a busy 2-core machine.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from carpctl.health.runner import CheckRunner

from .conftest import spec_of

CHECKS, HANGING = 200, 20
RUN_FOR = 5.0
TICK = 0.01
WORST_ALLOWED = 0.5

SERVER = textwrap.dedent(
    """
    import http.server, sys, time

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.startswith("/trickle"):
                # one header byte every 50 ms, forever: each read succeeds, no timeout fires
                self.wfile.write(b"HTTP/1.1 200 OK\\r\\n")
                try:
                    while True:
                        time.sleep(0.05)
                        self.wfile.write(b"X")
                        self.wfile.flush()
                except OSError:
                    return
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\\n")

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 512

    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


@pytest.fixture
def server_url() -> Iterator[str]:
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    port = int(process.stdout.readline())
    yield f"http://127.0.0.1:{port}"
    process.kill()
    process.wait(5)


def test_the_loop_stays_responsive_under_200_http_checks(server_url: str) -> None:
    every = CHECKS // HANGING
    specs = [
        spec_of(
            name=f"web{i}",
            kind="http",
            url=f"{server_url}/trickle/{i}"
            if i % (CHECKS // HANGING) == 0
            else f"{server_url}/{i}",
            interval=2.0,
            timeout=1.0,
            rise=1,
            fall=1,
        )
        for i in range(CHECKS)
    ]

    async def scenario() -> tuple[list[float], list[dict[str, Any]], int]:
        loop = asyncio.get_running_loop()
        lateness: list[float] = []
        done = loop.create_future()

        def tick(expected: float) -> None:
            now = loop.time()
            lateness.append(now - expected)
            if now - started >= RUN_FOR:
                done.set_result(None)
            else:
                loop.call_later(TICK, tick, now + TICK)

        runner = CheckRunner(specs, lambda s, t: None, loop=loop)
        runner.start()
        started = loop.time()
        loop.call_later(TICK, tick, started + TICK)
        await done
        status = runner.status()
        threads = runner.pool.threads
        await runner.stop()
        return lateness, status, threads

    lateness, status, threads = asyncio.run(scenario())
    late = sorted(lateness)
    numbers = {
        "ticks": len(late),
        "median_ms": round(statistics.median(late) * 1000, 2),
        "p99_ms": round(late[int(len(late) * 0.99)] * 1000, 2),
        "max_ms": round(late[-1] * 1000, 2),
        "threads": threads,
    }
    print(f"\nloop lateness with {CHECKS} http checks, {HANGING} hanging: {numbers}")

    states = {row["name"]: row for row in status}
    hanging = [states[f"web{i}"] for i in range(0, CHECKS, every)]
    healthy = [row for row in states.values() if row not in hanging]
    assert all(row["state"] == "failing" and row["hanging"] for row in hanging)
    assert all(row["last"]["status"] == "ok" for row in healthy), [
        row for row in healthy if row["last"]["status"] != "ok"
    ][:3]
    assert all(row["consecutive"] >= 2 for row in healthy)  # ran on schedule, repeatedly
    assert threads <= CHECKS
    assert numbers["max_ms"] < WORST_ALLOWED * 1000
