"""A health endpoint for the check benchmarks, run inside a lab node's namespace.

    python bench/health_server.py PORT [--flag FILE]

Answers every GET on 127.0.0.1:PORT with 200, or with 500 while ``--flag``
names a file that does not exist (as tests/engine/health_server.py does),
except ``/hang/...``: those requests are read and never answered; the
connection is held until the client gives up and closes it (or for
``HANG_LIMIT`` seconds), so a check of such a URL always runs into its
timeout without the server piling up threads.
"""

from __future__ import annotations

import argparse
import select
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HANG_LIMIT = 30.0  # seconds a hanging request is held at most


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # 200 checks a second, in bursts: never refuse a connection
    flag: Path | None = None


class Health(BaseHTTPRequestHandler):
    server: Server

    def do_GET(self) -> None:
        if self.path.startswith("/hang/"):
            # Until the client closes (readable with nothing to read) or the limit.
            select.select([self.connection], [], [], HANG_LIMIT)
            self.close_connection = True
            return
        flag = self.server.flag
        healthy = flag is None or flag.exists()
        body = b"ok\n" if healthy else b"sick\n"
        self.send_response(200 if healthy else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--flag", type=Path, help="answer 500 while this file is missing")
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), Health)
    server.flag = args.flag
    server.serve_forever()


if __name__ == "__main__":
    main()
