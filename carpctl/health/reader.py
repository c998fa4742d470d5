"""Typed access to one ``[[check]]`` table, with errors that say file, key, expectation.

A check that ``use``s a stock definition is the stock table overlaid with
the config's own keys; a bad value that came from the stock file is
reported against that file (``checks/nginx.toml: check.port: ...``), a bad
value from the config against the config (``carpctl.toml: check[3].port``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carpctl.daemon.config import ConfigError


def config_error(file: Path | str, key: str, message: str) -> ConfigError:
    # Imported here, not at the top: carpctl.daemon.config imports this package.
    from carpctl.daemon.config import ConfigError

    return ConfigError(file, key, message)


class Required:
    """The default of a key that must be given."""

    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED = Required()


class TableReader:
    """One check's table: the config's keys over those of a stock entry."""

    def __init__(
        self,
        file: Path,
        path: str,
        table: dict[str, Any],
        stock: dict[str, Any] | None = None,
        stock_file: Path | None = None,
    ) -> None:
        self.file, self.path = file, path
        self.stock_file = stock_file
        self.stock_keys = frozenset(k for k in (stock or {}) if k not in table)
        self.table: dict[str, Any] = {**(stock or {}), **table}
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        if key in self.stock_keys and self.stock_file is not None:
            return config_error(
                self.stock_file, f"check.{key}", f"{message} (the stock check used by {self.where})"
            )
        return config_error(self.file, f"{self.path}.{key}", message)

    @property
    def where(self) -> str:
        return f"{self.file}: {self.path}"

    def has(self, key: str) -> bool:
        return key in self.table

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.table.get(key)

    def missing(self, key: str, expect: str) -> ConfigError:
        suffix = (
            f" (the stock check {self.stock_file.stem} leaves it to you)" if self.stock_file else ""
        )
        return config_error(self.file, f"{self.path}.{key}", f"missing; expected {expect}{suffix}")

    def _value(self, key: str, expect: str, ok: Callable[[Any], bool], default: object) -> Any:
        self.used.add(key)
        if key not in self.table:
            if isinstance(default, Required):
                raise self.missing(key, expect)
            return default
        value = self.table[key]
        if not ok(value):
            raise self.error(key, f"expected {expect}, got {value!r}")
        return value

    def string(
        self,
        key: str,
        default: str | Required = REQUIRED,
        *,
        pattern: re.Pattern[str] | None = None,
        choices: tuple[str, ...] = (),
        expect: str = "a non-empty string",
    ) -> str:
        value: str = self._value(key, *_string_rule(pattern, choices, expect), default)
        return value

    def optional_string(
        self,
        key: str,
        *,
        pattern: re.Pattern[str] | None = None,
        expect: str = "a non-empty string",
    ) -> str | None:
        value: str | None = self._value(key, *_string_rule(pattern, (), expect), None)
        return value

    def integer(self, key: str, low: int, high: int, default: int | Required = REQUIRED) -> int:
        value: int = self._value(
            key, f"an integer {low}..{high}", lambda v: _is_int(v) and low <= v <= high, default
        )
        return value

    def seconds(self, key: str, default: float, high: float, expect: str = "") -> float:
        value = self._value(
            key,
            expect or f"a number of seconds above 0 and at most {high:g}",
            lambda v: (_is_int(v) or isinstance(v, float)) and 0 < v <= high and math.isfinite(v),
            default,
        )
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value: bool = self._value(key, "true or false", lambda v: isinstance(v, bool), default)
        return value

    def regex(self, key: str) -> re.Pattern[str] | None:
        text = self.optional_string(key, expect="a regular expression")
        if text is None:
            return None
        try:
            return re.compile(text)
        except re.error as error:
            raise self.error(key, f"expected a regular expression, got {text!r}: {error}") from None

    def done(self, allowed: frozenset[str], kind: str, elsewhere: dict[str, str]) -> None:
        """Refuse keys this kind of check does not know."""
        unknown = sorted(set(self.table) - allowed)
        if not unknown:
            return
        key = unknown[0]
        owner = elsewhere.get(key)
        hint = f" ({key} belongs to {owner} checks)" if owner else ""
        raise self.error(key, f"unknown key for a {kind} check{hint}")


def _string_rule(
    pattern: re.Pattern[str] | None, choices: tuple[str, ...], expect: str
) -> tuple[str, Callable[[Any], bool]]:
    def ok(value: Any) -> bool:
        if not isinstance(value, str) or not value or "\0" in value:
            return False
        if choices and value not in choices:
            return False
        return pattern is None or pattern.fullmatch(value) is not None

    return (f"one of {', '.join(choices)}" if choices else expect), ok


def _is_int(value: Any) -> bool:
    # bool is an int in Python; TOML keeps them apart, so do we.
    return isinstance(value, int) and not isinstance(value, bool)
