"""tcp: a TCP connection to host:port is accepted within the timeout, then closed."""

from __future__ import annotations

import socket
import time

from carpctl.health.params import TcpParams
from carpctl.health.result import CheckResult


def probe(params: TcpParams, timeout: float) -> CheckResult:
    where = f"{params.host}:{params.port}"
    if ":" in params.host:
        where = f"[{params.host}]:{params.port}"
    started = time.monotonic()
    try:
        with socket.create_connection((params.host, params.port), timeout=timeout):
            pass
    except TimeoutError:
        return CheckResult.timeout(f"no connection to {where} within {timeout:g} s")
    except socket.gaierror as error:
        return CheckResult.failure(f"cannot resolve {params.host}: {error.strerror}")
    except OSError as error:
        return CheckResult.failure(f"cannot connect to {where}: {error.strerror or error}")
    return CheckResult.ok(f"connected to {where} in {(time.monotonic() - started) * 1000:.1f} ms")
