"""Load and validate carpctl.toml (design section 4).

A bad config is refused before anything changes, with the file, the key
path and what was expected: ``carpctl.toml: vhid[1].advskew: expected an
integer 0..254, got 300``.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv6Address,
    IPv6Interface,
    ip_address,
    ip_interface,
)
from pathlib import Path
from typing import Any, TypeVar, cast

from carpctl.core import auth
from carpctl.core.timing import Timing
from carpctl.health.spec import CheckSpec, parse_checks
from carpctl.reactor.spec import ServiceSpec, parse_services

# design section 4: /etc on Linux, /usr/local/etc (ports) on the BSDs
DEFAULT_PATH = Path(
    "/usr/local/etc/carpctl.toml"
    if sys.platform.startswith(("freebsd", "openbsd"))
    else "/etc/carpctl/carpctl.toml"
)
BACKENDS = ("auto", "embedded", "freebsd", "openbsd")
LOG_FORMATS = ("auto", "console", "json")
# Linux allows 15 bytes; BSD names are letters, digits, '.', '_' and '-'.
INTERFACE_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,15}")

T = TypeVar("T")


class ConfigError(ValueError):
    """A config problem: where it is and what was expected."""

    def __init__(self, file: Path | str, key: str, message: str) -> None:
        super().__init__(f"{file}: {key}: {message}" if key else f"{file}: {message}")
        self.file, self.key = str(file), key


@dataclass(frozen=True)
class CarpctlSection:
    backend: str = "auto"
    control_socket: Path = Path("/run/carpctl/carpctl.sock")
    state_dir: Path = Path("/var/lib/carpctl")
    log_format: str = "auto"
    metrics_listen: str = ""


@dataclass(frozen=True)
class CarpSection:
    allow: bool = True
    preempt: bool = False
    log: int = 1
    ifdown_demotion_factor: int = 240
    senderr_demotion_factor: int = 240


@dataclass(frozen=True)
class VhidSection:
    vhid: int
    interface: str
    addresses: tuple[IPv4Interface | IPv6Interface, ...]
    key: bytes = field(repr=False)  # the HMAC key; kept out of repr() and so out of logs
    advbase: int = 1
    advskew: int = 0
    timing: Timing = Timing.FREEBSD
    peer: IPv4Address | IPv6Address | None = None  # unicast peer; None: multicast
    virtual_mac: bool = False

    @property
    def name(self) -> str:
        """The devd-style name, ``1@eth0``."""
        return f"{self.vhid}@{self.interface}"


@dataclass(frozen=True)
class Config:
    path: Path
    carpctl: CarpctlSection = CarpctlSection()
    carp: CarpSection = CarpSection()
    vhids: tuple[VhidSection, ...] = ()
    checks: tuple[CheckSpec, ...] = ()
    services: tuple[ServiceSpec, ...] = ()


class _Reader:
    """Typed access to one table, collecting the key path for errors."""

    def __init__(self, file: Path, path: str, table: Any) -> None:
        self.file, self.path = file, path
        if not isinstance(table, dict):
            raise self.error("", "expected a table")
        self.table: dict[str, Any] = table
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> ConfigError:
        return ConfigError(self.file, self.key(name) if name else self.path, message)

    def get(
        self,
        name: str,
        kind: type[T],
        default: T | None = None,
        check: Callable[[T], bool] | None = None,
        expect: str = "",
    ) -> T:
        self.used.add(name)
        if name not in self.table:
            if default is None:
                raise self.error(name, f"missing; expected {expect or kind.__name__}")
            return default
        value = self.table[name]
        # bool is an int in Python; TOML keeps them apart, so do we.
        wrong_type = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if wrong_type or (check is not None and not check(value)):
            raise self.error(name, f"expected {expect or kind.__name__}, got {value!r}")
        return cast(T, value)

    def done(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _int_range(low: int, high: int) -> tuple[Callable[[int], bool], str]:
    return (lambda v: low <= v <= high), f"an integer {low}..{high}"


def _carpctl(file: Path, raw: Any) -> CarpctlSection:
    r = _Reader(file, "carpctl", raw)
    section = CarpctlSection(
        backend=r.get(
            "backend", str, "auto", BACKENDS.__contains__, f"one of {', '.join(BACKENDS)}"
        ),
        control_socket=Path(r.get("control_socket", str, str(CarpctlSection.control_socket))),
        state_dir=Path(r.get("state_dir", str, str(CarpctlSection.state_dir))),
        log_format=r.get(
            "log_format", str, "auto", LOG_FORMATS.__contains__, f"one of {', '.join(LOG_FORMATS)}"
        ),
        metrics_listen=_listen(r, r.get("metrics_listen", str, "")),
    )
    r.done()
    return section


def _listen(r: _Reader, text: str) -> str:
    from carpctl.daemon.metrics import parse_listen  # imports prometheus_client: only if used

    if text:
        try:
            parse_listen(text)
        except ValueError as error:
            raise r.error("metrics_listen", f"expected host:port ({error})") from None
    return text


def _carp(file: Path, raw: Any) -> CarpSection:
    r = _Reader(file, "carp", raw)
    factor, factor_text = _int_range(0, 240)
    section = CarpSection(
        allow=r.get("allow", bool, True),
        preempt=r.get("preempt", bool, False),
        log=r.get("log", int, 1, *_int_range(0, 7)),
        ifdown_demotion_factor=r.get("ifdown_demotion_factor", int, 240, factor, factor_text),
        senderr_demotion_factor=r.get("senderr_demotion_factor", int, 240, factor, factor_text),
    )
    r.done()
    return section


def _address(r: _Reader, index: int, text: Any) -> IPv4Interface | IPv6Interface:
    key = f"addresses[{index}]"
    if not isinstance(text, str):
        raise r.error(key, f"expected an address with prefix length, got {text!r}")
    try:
        address = ip_interface(text)
    except ValueError:
        raise r.error(key, f"expected an address like 198.51.100.10/24, got {text!r}") from None
    if "/" not in text:
        raise r.error(key, f"expected a prefix length (e.g. {text}/24), got {text!r}")
    if address.ip.is_multicast or address.ip.is_unspecified:
        raise r.error(key, f"expected a unicast address, got {text!r}")
    return address


def _password(r: _Reader, file: Path) -> bytes:
    has_password, has_file = "password" in r.table, "password_file" in r.table
    if has_password and has_file:
        raise r.error("password_file", "expected either password or password_file, not both")
    if has_file:
        name = r.get("password_file", str)
        path = (file.parent / name) if not Path(name).is_absolute() else Path(name)
        try:
            secret = path.read_bytes().split(b"\n", 1)[0].rstrip(b"\r")
        except OSError as error:
            raise r.error("password_file", f"cannot read {path}: {error.strerror}") from None
    else:
        secret = r.get("password", str, "").encode()
    if len(secret) > auth.KEY_MAX_LEN:
        raise r.error(
            "password_file" if has_file else "password",
            f"expected at most {auth.KEY_MAX_LEN} bytes (the kernels use no more; "
            f"ucarp refuses longer), got {len(secret)}",
        )
    return secret


def _vhid(file: Path, index: int, raw: Any) -> VhidSection:
    r = _Reader(file, f"vhid[{index}]", raw)
    number = r.get("vhid", int, None, *_int_range(1, 255))
    interface = r.get(
        "interface",
        str,
        None,
        lambda name: INTERFACE_NAME.fullmatch(name) is not None,
        "an interface name (1-15 characters)",
    )
    advbase = r.get("advbase", int, 1, *_int_range(0, 255))
    advskew = r.get("advskew", int, 0, *_int_range(0, 254))
    if advbase == 0 and advskew == 0:
        raise r.error("advskew", "expected above 0 when advbase is 0")
    raw_addresses = r.get("addresses", list, None, bool, "a non-empty list of addresses")
    addresses = tuple(_address(r, i, a) for i, a in enumerate(raw_addresses))
    timing_name = r.get(
        "timing", str, "freebsd", {t.value for t in Timing}.__contains__, "freebsd or openbsd"
    )
    peer_text = r.get("peer", str, "")
    peer = None
    if peer_text:
        try:
            peer = ip_address(peer_text)
        except ValueError:
            raise r.error("peer", f"expected a unicast IP address, got {peer_text!r}") from None
        if peer.is_multicast:
            raise r.error("peer", f"expected a unicast IP address, got {peer_text!r}")
    r.used.update({"password", "password_file"})
    section = VhidSection(
        vhid=number,
        interface=interface,
        addresses=addresses,
        key=_password(r, file),
        advbase=advbase,
        advskew=advskew,
        timing=Timing(timing_name),
        peer=peer,
        virtual_mac=r.get("virtual_mac", bool, False),
    )
    r.done()
    return section


SECTIONS = ("carpctl", "carp", "vhid", "check", "service")


def _checks(file: Path, raw: Any) -> tuple[CheckSpec, ...]:
    if not isinstance(raw, list):
        raise ConfigError(file, "check", "expected [[check]] tables")
    return parse_checks(file, raw)


def parse(text: str, file: Path | str = DEFAULT_PATH) -> Config:
    file = Path(file)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(file, "", f"not valid TOML: {error}") from None
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            file, unknown[0], f"unknown section; expected one of {', '.join(SECTIONS)}"
        )
    raw_vhids = document.get("vhid", [])
    if not isinstance(raw_vhids, list):
        raise ConfigError(file, "vhid", "expected [[vhid]] tables")
    vhids = tuple(_vhid(file, i, v) for i, v in enumerate(raw_vhids))
    seen: dict[str, int] = {}
    for i, v in enumerate(vhids):
        if v.name in seen:
            raise ConfigError(
                file, f"vhid[{i}].vhid", f"duplicate: {v.name} is also vhid[{seen[v.name]}]"
            )
        seen[v.name] = i
    # One raw socket per interface and family, so one unicast peer each.
    peers: dict[tuple[str, int], tuple[int, object]] = {}
    for i, v in enumerate(vhids):
        if v.peer is None:
            continue
        first = peers.setdefault((v.interface, v.peer.version), (i, v.peer))
        if first[1] != v.peer:
            raise ConfigError(
                file,
                f"vhid[{i}].peer",
                f"expected {first[1]} like vhid[{first[0]}]: one unicast peer per interface",
            )
    return Config(
        path=file,
        carpctl=_carpctl(file, document.get("carpctl", {})),
        carp=_carp(file, document.get("carp", {})),
        vhids=vhids,
        checks=_checks(file, document.get("check", [])),
        # With [[vhid]] tables (the embedded engine) a service may only name those
        # vhids; with a kernel backend the vhids are the kernel's, not ours to check.
        services=parse_services(
            file,
            document.get("service", []),
            known_vhids=[v.name for v in vhids] if vhids else None,
        ),
    )


def load(path: Path | str = DEFAULT_PATH) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ConfigError(path, "", f"cannot read the config: {error.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(path, "", "not UTF-8 text") from None
    return parse(text, path)
