"""``[[service]]`` tables (design sections 4 and 7) parsed into typed ``ServiceSpec``s.

Exactly one way to drive the service:

* ``unit = "haproxy.service"`` -- systemd (``systemctl start|stop``, status
  ``systemctl is-active``); a name without a suffix gets ``.service``;
* ``rc = "haproxy"`` -- FreeBSD ``service NAME onestart|onestop|onestatus``
  or OpenBSD ``rcctl -f start|stop NAME`` / ``rcctl check NAME``; ``manager =
  "freebsd" | "openbsd"`` chooses, else the platform does (OpenBSD on
  OpenBSD, FreeBSD's ``service`` everywhere else);
* ``start`` + ``stop`` argv lists (``status`` optional) -- hook commands,
  called with the devd-style arguments appended (``1@eth0 MASTER``);
* ``run`` argv -- a long-running server carpctl itself supervises: spawned
  on MASTER, SIGTERM (then SIGKILL) otherwise, its death reported.

Argv lists only, never a shell string. ``env`` (command and run services
only) adds to the environment. ``vhids`` lists ``VHID@IF`` names (default:
every vhid). ``timeout`` (30 s) bounds every step. ``demote`` (240) is the
ledger entry a failed start adds, for ``retry_after`` (60 s), which is
also how long before the start is tried again. Damping: ``min_master`` (0
s), ``flap_count`` (0: off), ``flap_window`` (60 s), ``hold_down`` (60 s);
see ``carpctl.core.reactor``.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import sys
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from carpctl.core.ledger import MAX_AMOUNT
from carpctl.core.reactor import ServiceRule, parse_vhid_name
from carpctl.health.reader import REQUIRED, TableReader, config_error

NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
UNIT_SUFFIXES = ("service", "socket", "target", "device", "mount", "automount", "swap",
                 "timer", "path", "slice", "scope")  # fmt: skip
UNIT = re.compile(r"[A-Za-z0-9:_.\\@][A-Za-z0-9:_.\\@-]{0,255}")
RC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHELL_SYNTAX = "|&;<>$`*?(){}~"
MAX_SECONDS = 86400.0


class Manager(StrEnum):
    SYSTEMD = "systemd"
    FREEBSD = "freebsd"
    OPENBSD = "openbsd"
    COMMAND = "command"
    RUN = "run"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    manager: Manager
    unit: str | None = None  # systemd
    rc: str | None = None  # freebsd / openbsd
    start: tuple[str, ...] = ()  # command
    stop: tuple[str, ...] = ()
    status: tuple[str, ...] = ()  # command, optional
    run: tuple[str, ...] = ()  # run
    vhids: tuple[str, ...] = ()  # () = every vhid
    timeout: float = 30.0
    demote: int = 240
    retry_after: float = 60.0
    env: tuple[tuple[str, str], ...] = ()
    min_master: float = 0.0
    flap_count: int = 0
    flap_window: float = 60.0
    hold_down: float = 60.0

    @property
    def target(self) -> str:
        """What it drives, for status and logs: the unit, the rc name or argv[0]."""
        return self.unit or self.rc or (self.run or self.start)[0]

    def rule(self) -> ServiceRule:
        return ServiceRule(
            name=self.name,
            vhids=self.vhids,
            min_master=self.min_master,
            flap_count=self.flap_count,
            flap_window=self.flap_window,
            hold_down=self.hold_down,
            retry_after=self.retry_after,
        )


KINDS = ("unit", "rc", "start", "run")  # the key that selects each way
KIND_KEYS = {
    "unit": frozenset({"unit"}),
    "rc": frozenset({"rc"}),
    "start": frozenset({"start", "stop", "status", "env"}),
    "run": frozenset({"run", "env"}),
}
COMMON = frozenset({"name", "manager", "vhids", "timeout", "demote", "retry_after",
                    "min_master", "flap_count", "flap_window", "hold_down"})  # fmt: skip
MANAGERS = {"unit": (Manager.SYSTEMD,), "rc": (Manager.FREEBSD, Manager.OPENBSD),
            "start": (Manager.COMMAND,), "run": (Manager.RUN,)}  # fmt: skip


def parse_services(
    file: Path,
    raw: list[Any],
    *,
    platform: str = sys.platform,
    known_vhids: Collection[str] | None = None,
) -> tuple[ServiceSpec, ...]:
    """The ``[[service]]`` array of ``file``, validated; ConfigError at the first problem.

    With ``known_vhids`` (the configured ``[[vhid]]`` names) every service's
    vhids must be among them.
    """
    if not isinstance(raw, list):
        raise config_error(file, "service", "expected [[service]] tables")
    specs = tuple(
        parse_service(file, i, table, platform=platform, known_vhids=known_vhids)
        for i, table in enumerate(raw)
    )
    seen: dict[str, int] = {}
    for i, spec in enumerate(specs):
        if spec.name in seen:
            raise config_error(
                file, f"service[{i}].name",
                f"duplicate: {spec.name!r} is also service[{seen[spec.name]}]",
            )  # fmt: skip
        seen[spec.name] = i
    return specs


def parse_service(
    file: Path,
    index: int,
    table: Any,
    *,
    platform: str = sys.platform,
    known_vhids: Collection[str] | None = None,
) -> ServiceSpec:
    path = f"service[{index}]"
    if not isinstance(table, dict):
        raise config_error(file, path, "expected a table")
    r = TableReader(file, path, table)
    name = r.string(
        "name", REQUIRED, pattern=NAME, expect="a name of letters, digits, _ . @ - (at most 64)"
    )
    given = [k for k in KINDS if k in table]
    if len(given) != 1:
        where = given[1] if given else "start"
        raise (r.error if given else r.missing)(where, _one_of(given))
    kind = given[0]
    default = Manager.OPENBSD if platform.startswith("openbsd") else Manager.FREEBSD
    manager = Manager(
        r.string("manager", MANAGERS[kind][0] if kind != "rc" else default,
                 choices=tuple(MANAGERS[kind]))
    )  # fmt: skip
    fields: dict[str, Any] = {}
    if kind == "unit":
        fields["unit"] = _unit(r)
    elif kind == "rc":
        fields["rc"] = r.string("rc", pattern=RC_NAME, expect="an rc.d script name")
    elif kind == "start":
        fields["start"] = _argv(r, "start", required=True)
        fields["stop"] = _argv(r, "stop", required=True)
        fields["status"] = _argv(r, "status", required=False)
        fields["env"] = _env(r)
    else:
        fields["run"] = _argv(r, "run", required=True)
        fields["env"] = _env(r)
    spec = ServiceSpec(
        name=name,
        manager=manager,
        vhids=_vhids(r, known_vhids),
        timeout=r.seconds("timeout", 30.0, 3600.0),
        demote=r.integer("demote", 0, MAX_AMOUNT, 240),
        retry_after=r.seconds("retry_after", 60.0, MAX_SECONDS),
        min_master=_non_negative(r, "min_master", 0.0),
        flap_count=r.integer("flap_count", 0, 1000, 0),
        flap_window=r.seconds("flap_window", 60.0, MAX_SECONDS),
        hold_down=r.seconds("hold_down", 60.0, MAX_SECONDS),
        **fields,
    )
    _done(r, COMMON | KIND_KEYS[kind], kind)
    return spec


def _one_of(given: list[str]) -> str:
    ways = "unit (systemd), rc (service/rcctl), start and stop (commands) or run (a server)"
    if not given:
        return f"one of {ways}"
    return f"expected only one of {ways}; {' and '.join(given)} are given together"


def _unit(r: TableReader) -> str:
    unit = r.string("unit", pattern=UNIT, expect="a systemd unit name like haproxy.service")
    base, dot, suffix = unit.rpartition(".")
    if not dot or suffix not in UNIT_SUFFIXES:
        base, suffix = unit, "service"
    if not base or base.endswith("@") or base.startswith("-"):
        raise r.error("unit", f"expected a systemd unit name like haproxy.service, got {unit!r}")
    return f"{base}.{suffix}"


def _argv(r: TableReader, key: str, *, required: bool) -> tuple[str, ...]:
    argv = r.raw(key)
    if isinstance(argv, str):
        raise r.error(
            key,
            "expected a list of strings (the program and its arguments, run without a shell), "
            f"got the string {argv!r}{_argv_hint(argv)}",
        )
    if argv is None:
        if not required:
            return ()
        raise r.missing(key, 'a list of strings, e.g. ["/usr/local/bin/app", "--serve"]')
    if (
        not isinstance(argv, list)
        or not argv
        or not all(isinstance(word, str) and "\0" not in word for word in argv)
        or not argv[0]
    ):
        raise r.error(key, f"expected a non-empty list of strings, got {argv!r}")
    return tuple(argv)


def _argv_hint(text: str) -> str:
    if any(c in text for c in SHELL_SYNTAX):
        return "; shell syntax needs a script: write one and give its path in the list"
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return f"; write it as {json.dumps(words)}"


def _env(r: TableReader) -> tuple[tuple[str, str], ...]:
    env = r.raw("env")
    if env is None:
        return ()
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and ENV_NAME.fullmatch(k) and isinstance(v, str) and "\0" not in v
        for k, v in env.items()
    ):
        raise r.error("env", f'expected a table of NAME = "string" values, got {env!r}')
    return tuple(sorted(env.items()))


def _vhids(r: TableReader, known: Collection[str] | None) -> tuple[str, ...]:
    raw = r.raw("vhids")
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise r.error(
            "vhids",
            f'expected a non-empty list like ["1@eth0"] (leave vhids out for every vhid), '
            f"got {raw!r}",
        )
    for i, name in enumerate(raw):
        try:
            parse_vhid_name(name)
        except ValueError:
            raise r.error(
                f"vhids[{i}]",
                f"expected VHID@INTERFACE with a vhid 1..255 and an interface name "
                f"(like 1@eth0), got {name!r}",
            ) from None
        if name in raw[:i]:
            raise r.error(f"vhids[{i}]", f"expected each vhid once, {name!r} is repeated")
        if known is not None and name not in known:
            listed = ", ".join(known) or "none"
            raise r.error(f"vhids[{i}]", f"expected a configured vhid ({listed}), got {name!r}")
    return tuple(raw)


def _non_negative(r: TableReader, key: str, default: float) -> float:
    value = r.raw(key)
    if value is None:
        return default
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not 0 <= value <= MAX_SECONDS:
        raise r.error(key, f"expected a number of seconds 0..{MAX_SECONDS:g}, got {value!r}")
    return float(value)


def _done(r: TableReader, allowed: frozenset[str], kind: str) -> None:
    unknown = sorted(set(r.table) - allowed)
    if not unknown:
        return
    key = unknown[0]
    owners = [k for k, keys in KIND_KEYS.items() if key in keys]
    if owners:
        way = {"unit": "unit", "rc": "rc", "start": "start/stop", "run": "run"}
        hint = f"; {key} belongs with {' or '.join(way[o] for o in owners)}, not {way[kind]}"
        raise r.error(key, f"unexpected key for a {way[kind]} service{hint}")
    raise r.error(key, "unknown key for a service")
