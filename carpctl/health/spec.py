"""``[[check]]`` tables (design section 4) parsed into typed, validated ``CheckSpec``s.

Common keys: ``name`` (unique, ``[A-Za-z0-9_.-]``), ``kind``, ``interval``
(2.0 s), ``timeout`` (1.0 s, at most ``interval``), ``rise`` (2), ``fall``
(2), ``demote`` (50, 0..1000 like the ledger's limit: anything from 240 up
demotes fully) and ``use`` (a stock check from ``checks/``, whose keys the
table overrides). Each kind has its own keys (see the ``*Params`` classes).
Unknown keys and wrong types are refused with a ``ConfigError`` naming the
file, the key path (``check[3].port``) and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carpctl.core.ledger import MAX_AMOUNT
from carpctl.health import catalog
from carpctl.health.params import (
    KEYS,
    KIND_OF,
    PARSERS,
    CommandParams,
    FileParams,
    HttpParams,
    Kind,
    LinkParams,
    Params,
    PfsyncParams,
    ProcessParams,
    TcpParams,
)
from carpctl.health.reader import REQUIRED, TableReader, config_error

__all__ = [
    "CheckSpec",
    "CommandParams",
    "FileParams",
    "HttpParams",
    "Kind",
    "LinkParams",
    "Params",
    "PfsyncParams",
    "ProcessParams",
    "TcpParams",
    "parse_checks",
]

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_INTERVAL = 86400.0
MAX_RISE_FALL = 100


@dataclass(frozen=True)
class CheckSpec:
    name: str
    params: Params
    interval: float = 2.0
    timeout: float = 1.0
    rise: int = 2
    fall: int = 2
    demote: int = 50
    use: str | None = None  # the stock check it came from

    @property
    def kind(self) -> Kind:
        return KIND_OF[type(self.params)]


COMMON = frozenset({"name", "kind", "use", "interval", "timeout", "rise", "fall", "demote"})


def parse_checks(
    file: Path, raw: list[Any], *, catalog_dirs: Sequence[Path] | None = None
) -> tuple[CheckSpec, ...]:
    """The ``[[check]]`` array of ``file``, validated; ConfigError at the first problem."""
    if not isinstance(raw, list):
        raise config_error(file, "check", "expected [[check]] tables")
    dirs = catalog.default_dirs() if catalog_dirs is None else tuple(catalog_dirs)
    specs = tuple(parse_check(file, i, table, dirs) for i, table in enumerate(raw))
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise config_error(
                file,
                f"check[{i}].name",
                f"duplicate: {spec.name!r} is also check[{seen[spec.name]}]",
            )
        seen[spec.name] = i
    return specs


def parse_check(file: Path, index: int, table: Any, dirs: Sequence[Path]) -> CheckSpec:
    path = f"check[{index}]"
    if not isinstance(table, dict):
        raise config_error(file, path, "expected a table")
    stock, stock_file, use = None, None, None
    if "use" in table:
        use = table["use"]
        stock_file = catalog.find(use, dirs) if isinstance(use, str) else None
        if stock_file is None:
            names = ", ".join(catalog.available(dirs)) or "none found"
            raise config_error(
                file, f"{path}.use", f"expected the name of a stock check ({names}), got {use!r}"
            )
        stock = catalog.load(stock_file)
    r = TableReader(file, path, table, stock, stock_file)
    r.raw("use")
    name = r.string("name", use if use is not None else REQUIRED, pattern=NAME,
                    expect="a name of letters, digits, '_', '.' and '-' (at most 64)")  # fmt: skip
    kind = Kind(r.string("kind", choices=tuple(Kind)))
    interval = r.seconds("interval", 2.0, MAX_INTERVAL)
    timeout = r.seconds(
        "timeout",
        min(1.0, interval),
        interval,
        f"a number of seconds above 0 and at most the interval ({interval:g})",
    )
    spec = CheckSpec(
        name=name,
        params=PARSERS[kind](r),
        interval=interval,
        timeout=timeout,
        rise=r.integer("rise", 1, MAX_RISE_FALL, 2),
        fall=r.integer("fall", 1, MAX_RISE_FALL, 2),
        demote=r.integer("demote", 0, MAX_AMOUNT, 50),
        use=use,
    )
    others = {k: str(owner) for owner, keys in KEYS.items() if owner != kind for k in keys}
    r.done(COMMON | KEYS[kind], str(kind), others)
    return spec
