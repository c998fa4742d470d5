"""http and tcp probes against a real HTTP server and real listeners on 127.0.0.1."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import pytest

from carpctl.core.checkstate import Result
from carpctl.health.kinds import probe

from .conftest import HttpServer, closed_port, spec_of


def test_http_ok_then_500_then_wrong_body_then_hang(http_server: HttpServer) -> None:
    spec = spec_of(kind="http", url=http_server.url + "/health", body_pattern="^ok$", timeout=0.5)
    result = probe(spec)
    assert result.status is Result.OK
    assert result.detail == "HTTP 200 OK, body matches /^ok$/"

    http_server.behaviour.status = 500
    result = probe(spec)
    assert result.status is Result.FAILURE
    assert result.detail == (
        f"HTTP 500 Internal Server Error from {http_server.url}/health, expected 200"
    )

    http_server.behaviour.status, http_server.behaviour.body = 200, b"degraded\n"
    result = probe(spec)
    assert result.status is Result.FAILURE
    assert "body does not match /^ok$/: 'degraded\\n'" in result.detail

    http_server.behaviour.mode = "hang"
    started = time.monotonic()
    result = probe(spec)
    assert result.status is Result.TIMEOUT
    assert result.detail == f"no answer from {http_server.url}/health within 0.5 s"
    assert time.monotonic() - started < 3


def test_http_expected_statuses_redirects_and_head(http_server: HttpServer) -> None:
    http_server.behaviour.status = 503
    assert probe(spec_of(kind="http", url=http_server.url, expect_status=[200, 503])).status is (
        Result.OK
    )
    # redirects are not followed: a 301 is judged as a 301
    redirect = http_server.url + "/redirect"
    assert probe(spec_of(kind="http", url=redirect)).status is Result.FAILURE
    assert probe(spec_of(kind="http", url=redirect, expect_status=301)).status is Result.OK
    http_server.behaviour.status = 200
    head = probe(spec_of(kind="http", url=http_server.url, method="HEAD"))
    assert (head.status, head.detail) == (Result.OK, "HTTP 200 OK")


def test_http_ignores_proxy_variables(
    http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    assert probe(spec_of(kind="http", url=http_server.url)).status is Result.OK


def test_http_connection_refused_and_tls_to_a_plain_server(http_server: HttpServer) -> None:
    port = closed_port()
    refused = probe(spec_of(kind="http", url=f"http://127.0.0.1:{port}/"))
    assert (refused.status, refused.detail) == (
        Result.FAILURE,
        f"cannot connect to http://127.0.0.1:{port}/: Connection refused",
    )
    tls = probe(spec_of(kind="http", url=http_server.url.replace("http:", "https:")))
    assert tls.status is Result.FAILURE
    assert tls.detail.startswith("TLS error with https://127.0.0.1:")


def test_http_body_trickling_past_the_timeout(http_server: HttpServer) -> None:
    """The body loop keeps to the deadline although every single read succeeds."""
    spec = spec_of(kind="http", url=http_server.url + "/slowbody", body_pattern="y", timeout=0.4)
    started = time.monotonic()
    result = probe(spec)
    assert (result.status, result.detail) == (
        Result.TIMEOUT,
        "HTTP 200 OK, but the body took over 0.4 s",
    )
    assert time.monotonic() - started < 2
    stalled = probe(spec_of(kind="http", url=http_server.url + "/stallbody", body_pattern="y",
                            timeout=0.3))  # fmt: skip
    assert (stalled.status, stalled.detail) == (
        Result.TIMEOUT,
        "HTTP 200 OK, but the body stalled for 0.3 s",
    )


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A listener whose accept queue is full: new SYNs are dropped, connects time out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held = []
    for _ in range(4):
        client = socket.socket()
        client.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            client.connect(("127.0.0.1", port))
        held.append(client)
    time.sleep(0.1)
    yield port
    for client in held:
        client.close()
    server.close()


def test_tcp_accepting_refusing_and_not_answering(
    listener: socket.socket, full_backlog: int
) -> None:
    port = listener.getsockname()[1]
    ok = probe(spec_of(kind="tcp", host="127.0.0.1", port=port))
    assert ok.status is Result.OK
    assert ok.detail.startswith(f"connected to 127.0.0.1:{port} in ")

    gone = closed_port()
    refused = probe(spec_of(kind="tcp", host="127.0.0.1", port=gone))
    assert (refused.status, refused.detail) == (
        Result.FAILURE,
        f"cannot connect to 127.0.0.1:{gone}: Connection refused",
    )

    started = time.monotonic()
    silent = probe(spec_of(kind="tcp", host="127.0.0.1", port=full_backlog, timeout=0.3))
    assert (silent.status, silent.detail) == (
        Result.TIMEOUT,
        f"no connection to 127.0.0.1:{full_backlog} within 0.3 s",
    )
    assert time.monotonic() - started < 2


def test_tcp_ipv6_loopback() -> None:
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with server:
        port = server.getsockname()[1]
        result = probe(spec_of(kind="tcp", host="::1", port=port))
    assert result.status is Result.OK
    assert result.detail.startswith(f"connected to [::1]:{port}")
