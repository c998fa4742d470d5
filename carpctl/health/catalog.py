"""The stock check catalog: ``checks/<name>.toml``, used by ``use = "<name>"``.

Each entry is a TOML file with one ``[check]`` table holding any keys of a
``[[check]]`` table except ``name`` and ``use`` (the name defaults to the
entry's). Entries are looked up, first match wins, in the source tree's
``checks/`` (a checkout or an editable install), then
``<prefix>/share/carpctl/checks``, ``/usr/local/share/carpctl/checks`` and
``/usr/share/carpctl/checks``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from carpctl.health.reader import config_error

ENTRY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def default_dirs() -> tuple[Path, ...]:
    return (
        Path(__file__).resolve().parents[2] / "checks",
        Path(sys.prefix) / "share" / "carpctl" / "checks",
        Path("/usr/local/share/carpctl/checks"),
        Path("/usr/share/carpctl/checks"),
    )


def available(dirs: Sequence[Path]) -> list[str]:
    """Names of every entry found in ``dirs``, sorted."""
    names = {p.stem for d in dirs if d.is_dir() for p in d.glob("*.toml")}
    return sorted(n for n in names if ENTRY_NAME.fullmatch(n))


def find(name: str, dirs: Sequence[Path]) -> Path | None:
    if not ENTRY_NAME.fullmatch(name):
        return None
    for directory in dirs:
        path = directory / f"{name}.toml"
        if path.is_file():
            return path
    return None


def load(path: Path) -> dict[str, Any]:
    """The ``[check]`` table of one entry; ConfigError naming the entry's file."""
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise config_error(path, "", f"cannot read the stock check: {error.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise config_error(path, "", f"not valid TOML: {error}") from None
    extra = sorted(set(document) - {"check"})
    if extra:
        raise config_error(path, extra[0], "unknown section; a stock check is one [check] table")
    table = document.get("check")
    if not isinstance(table, dict):
        raise config_error(path, "check", "expected a [check] table")
    for key in ("name", "use"):
        if key in table:
            raise config_error(path, f"check.{key}", "not allowed in a stock check")
    return table
