"""A health endpoint for lab tests: 200 while FLAG exists, 500 otherwise.

Run inside a node's namespace: ``python health_server.py PORT FLAG``.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def main() -> None:
    port, flag = int(sys.argv[1]), Path(sys.argv[2])

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            healthy = flag.exists()
            self.send_response(200 if healthy else 500)
            self.end_headers()
            self.wfile.write(b"ok\n" if healthy else b"sick\n")

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Health).serve_forever()


if __name__ == "__main__":
    main()
