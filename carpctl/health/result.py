"""What one probe run returns."""

from __future__ import annotations

from dataclasses import dataclass

from carpctl.core.checkstate import Result

DETAIL_MAX = 300  # characters of detail kept (a command's last line, an error ...)


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: Result
    detail: str = ""

    @classmethod
    def ok(cls, detail: str = "") -> CheckResult:
        return cls(Result.OK, _short(detail))

    @classmethod
    def warning(cls, detail: str = "") -> CheckResult:
        return cls(Result.WARNING, _short(detail))

    @classmethod
    def failure(cls, detail: str) -> CheckResult:
        return cls(Result.FAILURE, _short(detail))

    @classmethod
    def timeout(cls, detail: str) -> CheckResult:
        return cls(Result.TIMEOUT, _short(detail))


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"
