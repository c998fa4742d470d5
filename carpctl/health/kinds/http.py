"""http: one request with requests; the status must be expected, the body may have to match.

Redirects are not followed (a 301 is a 301: list it in ``expect_status`` if
it is what the service answers); proxy variables and .netrc are ignored
(``trust_env = False``): a health URL is asked directly. The whole probe,
body included, is bounded by the timeout: requests' own timeout covers
connecting and each read, the body loop checks the deadline between chunks,
and the runner abandons a probe stuck anywhere else.
"""

from __future__ import annotations

import time

import requests
import urllib3

from carpctl.health.params import HttpParams
from carpctl.health.result import CheckResult

BODY_MAX = 64 * 1024  # body_pattern is searched in the first 64 KiB
CHUNK = 8192
USER_AGENT = "carpctl-health-check"


def probe(params: HttpParams, timeout: float) -> CheckResult:
    deadline = time.monotonic() + timeout
    if not params.verify_tls:
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    try:
        with requests.Session() as session:
            session.trust_env = False
            response = session.request(
                params.method,
                params.url,
                timeout=(timeout, timeout),
                verify=params.verify_tls,
                allow_redirects=False,
                stream=True,
                headers={"User-Agent": USER_AGENT, "Connection": "close"},
            )
            with response:
                return _judge(params, response, deadline, timeout)
    except requests.Timeout:
        return CheckResult.timeout(f"no answer from {params.url} within {timeout:g} s")
    except requests.exceptions.SSLError as error:
        return CheckResult.failure(f"TLS error with {params.url}: {_reason(error)}")
    except requests.ConnectionError as error:
        return CheckResult.failure(f"cannot connect to {params.url}: {_reason(error)}")
    except requests.RequestException as error:
        return CheckResult.failure(f"{params.url}: {_reason(error)}")


def _judge(
    params: HttpParams, response: requests.Response, deadline: float, timeout: float
) -> CheckResult:
    status = f"HTTP {response.status_code} {response.reason or ''}".strip()
    if response.status_code not in params.expect_status:
        expected = " or ".join(str(s) for s in params.expect_status)
        return CheckResult.failure(f"{status} from {params.url}, expected {expected}")
    if params.body_pattern is None:
        return CheckResult.ok(status)
    body = bytearray()
    try:
        # read1: whatever has arrived (a plain read waits to fill its whole buffer)
        while len(body) < BODY_MAX and (chunk := response.raw.read1(CHUNK, decode_content=True)):
            body += chunk
            if time.monotonic() > deadline:
                return CheckResult.timeout(f"{status}, but the body took over {timeout:g} s")
    except urllib3.exceptions.ReadTimeoutError:
        return CheckResult.timeout(f"{status}, but the body stalled for {timeout:g} s")
    except (urllib3.exceptions.HTTPError, OSError) as error:
        return CheckResult.failure(f"{status}, but reading the body failed: {_reason(error)}")
    text = bytes(body[:BODY_MAX]).decode(response.encoding or "utf-8", errors="replace")
    if params.body_pattern.search(text) is None:
        return CheckResult.failure(
            f"{status}, but the body does not match /{params.body_pattern.pattern}/: {text[:80]!r}"
        )
    return CheckResult.ok(f"{status}, body matches /{params.body_pattern.pattern}/")


def _reason(error: BaseException) -> str:
    """The root cause of a requests/urllib3 error ("Connection refused"), not its wrapping."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        reason = getattr(current, "reason", None)
        causes = [*current.args, reason, current.__cause__, current.__context__]
        todo.extend(c for c in causes if isinstance(c, BaseException))
    # urllib3 texts start with "<...Connection object at 0x..>: "
    return str(error).rsplit(">: ", 1)[-1]
