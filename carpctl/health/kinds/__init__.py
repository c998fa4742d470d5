"""One blocking probe per kind of check; ``probe(spec)`` picks the right one.

Every probe returns a ``CheckResult`` and never raises for what it finds
(an unexpected exception is the runner's to report). They block: the
runner calls them in worker threads, except command checks, which it runs
as asyncio subprocesses (``command.run``).
"""

from __future__ import annotations

from carpctl.health.kinds import command, file, http, link, pfsync, process, tcp
from carpctl.health.result import CheckResult
from carpctl.health.spec import (
    CheckSpec,
    CommandParams,
    FileParams,
    HttpParams,
    LinkParams,
    PfsyncParams,
    ProcessParams,
    TcpParams,
)

__all__ = ["CheckResult", "probe"]


def probe(spec: CheckSpec) -> CheckResult:
    """Run ``spec``'s probe once, blocking for at most about ``spec.timeout``."""
    params = spec.params
    if isinstance(params, HttpParams):
        return http.probe(params, spec.timeout)
    if isinstance(params, TcpParams):
        return tcp.probe(params, spec.timeout)
    if isinstance(params, ProcessParams):
        return process.probe(params)
    if isinstance(params, PfsyncParams):
        return pfsync.probe(params, spec.timeout)
    if isinstance(params, CommandParams):
        return command.probe(spec, params)
    if isinstance(params, FileParams):
        return file.probe(params)
    if isinstance(params, LinkParams):
        return link.probe(params)
    raise TypeError(f"no probe for {type(params).__name__}")
