"""The control-socket protocol, shared by the daemon and the CLI.

A Unix stream socket; the client sends one JSON object on one line, the
daemon answers with one JSON object on one line, the client closes::

    {"version": 1, "command": "demote", "args": {"delta": 50}}
    {"version": 1, "ok": true, "result": {...}}
    {"version": 1, "ok": false, "error": "<one sentence>", "code": 2}

Error code 2: the request was invalid; 1: the operation failed. Arguments
are validated here, once, for both sides: ``validate_args`` returns them
normalised (every key present, defaults filled in) or raises
``ControlError`` with code 2. The normalised arguments per command:

* status: ``{}``
* demote: ``{"delta", "reason", "for"}`` or ``{"set", "as", "reason", "for"}``
* maintenance: ``{"on", "reason", "for"}``
* check: ``{"name"}``
* event: ``{"vhid", "interface", "type"}``
* reload: ``{"dry_run", "force", "config"}``

``reason`` is a str ("" when not given), ``for`` a float of seconds or None,
``name`` a str or None; ``dry_run`` and ``force`` are bools (False when not
given), ``config`` the absolute path of the file the client validated, or None.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

VERSION = 1
MAX_REQUEST = 64 * 1024  # bytes, the newline included
MAX_REPLY = 16 * 1024 * 1024  # a status of 255 vhids is far below this
COMMANDS = ("status", "demote", "maintenance", "check", "event", "reload")
MAX_AMOUNT = 1000  # the ledger's bound (carpctl.core.ledger.MAX_AMOUNT)
MAX_REASON = 200  # characters
MAX_DURATION = 10 * 366 * 86400.0  # ten years: longer is a typo, not a plan
EVENT_TYPES = ("MASTER", "BACKUP", "INIT")
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_PATH = 4096  # bytes, PATH_MAX
INTERFACE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")  # as carpctl.daemon.config accepts


class ErrorCode(IntEnum):
    FAILED = 1  # the operation failed
    INVALID = 2  # the request was invalid
    UNREACHABLE = 3  # client side only: no daemon answered


class ControlError(Exception):
    """A one-sentence error with its code, on either side of the socket.

    Handlers raise it to answer with an error reply; the client raises it
    for error replies (code 1 or 2) and when the daemon cannot be reached
    (code 3).
    """

    def __init__(self, message: str, code: ErrorCode = ErrorCode.FAILED) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)


def invalid(message: str) -> ControlError:
    return ControlError(message, ErrorCode.INVALID)


def _show(value: object) -> str:
    """``repr(value)``, short enough for one sentence."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True, slots=True)
class Request:
    command: str
    args: dict[str, Any]


# -- argument validation ------------------------------------------------------


def _int(args: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = args[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"{key} must be an integer within {low}..{high}, got {_show(value)}")
    return value


def _name(args: Mapping[str, Any], key: str, what: str = "a name") -> str:
    value = args[key]
    if not isinstance(value, str) or NAME.fullmatch(value) is None:
        raise invalid(
            f"{key} must be {what} of 1-64 letters, digits, '-' and '_', got {_show(value)}"
        )
    return value


def _reason(args: Mapping[str, Any]) -> str:
    value = args.get("reason", "")
    if not isinstance(value, str) or len(value) > MAX_REASON:
        raise invalid(f"reason must be a text of at most {MAX_REASON} characters")
    if any(not ch.isprintable() for ch in value):
        raise invalid("reason must not contain control characters")
    return value


def _duration(args: Mapping[str, Any]) -> float | None:
    value = args.get("for")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"for must be a number of seconds, got {_show(value)}")
    if not (math.isfinite(value) and 0 < value <= MAX_DURATION):
        raise invalid(f"for must be above 0 and at most ten years, got {_show(value)}")
    return float(value)


def _keys(command: str, args: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise invalid(f"{command} takes no argument {_show(unknown[0])}")


def _status(args: Mapping[str, Any]) -> dict[str, Any]:
    _keys("status", args, set())
    return {}


def _demote(args: Mapping[str, Any]) -> dict[str, Any]:
    _keys("demote", args, {"delta", "set", "as", "reason", "for"})
    common = {"reason": _reason(args), "for": _duration(args)}
    if "delta" in args:
        if "set" in args or "as" in args:
            raise invalid("demote takes either delta or set with as, not both")
        delta = _int(args, "delta", -MAX_AMOUNT, MAX_AMOUNT)
        if common["for"] is not None and delta <= 0:
            raise invalid("a demotion for a limited time must be positive")
        return {"delta": delta, **common}
    if "set" not in args or "as" not in args:
        raise invalid("demote needs delta, or set together with as")
    amount = _int(args, "set", 0, MAX_AMOUNT)
    return {"set": amount, "as": _name(args, "as"), **common}


def _maintenance(args: Mapping[str, Any]) -> dict[str, Any]:
    _keys("maintenance", args, {"on", "reason", "for"})
    on = args.get("on")
    if not isinstance(on, bool):
        raise invalid(f"on must be true or false, got {_show(on)}")
    duration = _duration(args)
    if not on and duration is not None:
        raise invalid("maintenance off takes no duration")
    return {"on": on, "reason": _reason(args), "for": duration}


def _check(args: Mapping[str, Any]) -> dict[str, Any]:
    _keys("check", args, {"name"})
    if args.get("name") is None:
        return {"name": None}
    return {"name": _name(args, "name", "a check name")}


def _event(args: Mapping[str, Any]) -> dict[str, Any]:
    _keys("event", args, {"vhid", "interface", "type"})
    for key in ("vhid", "interface", "type"):
        if key not in args:
            raise invalid(f"event needs {key}")
    interface = args["interface"]
    if not isinstance(interface, str) or INTERFACE.fullmatch(interface) is None:
        raise invalid(f"interface must be an interface name, got {_show(interface)}")
    kind = args["type"]
    if kind not in EVENT_TYPES:
        raise invalid(f"type must be one of {', '.join(EVENT_TYPES)}, got {_show(kind)}")
    return {"vhid": _int(args, "vhid", 1, 255), "interface": interface, "type": kind}


def _flag(args: Mapping[str, Any], key: str) -> bool:
    value = args.get(key, False)
    if not isinstance(value, bool):
        raise invalid(f"{key} must be true or false, got {_show(value)}")
    return value


def _path(args: Mapping[str, Any], key: str) -> str | None:
    value = args.get(key)
    if value is None:
        return None
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or len(value.encode("utf-8", "surrogateescape")) > MAX_PATH
        or any(not ch.isprintable() for ch in value)
    ):
        raise invalid(f"{key} must be an absolute path, got {_show(value)}")
    return value


def _reload(args: Mapping[str, Any]) -> dict[str, Any]:
    _keys("reload", args, {"dry_run", "force", "config"})
    return {
        "dry_run": _flag(args, "dry_run"),
        "force": _flag(args, "force"),
        "config": _path(args, "config"),
    }


VALIDATORS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "status": _status,
    "demote": _demote,
    "maintenance": _maintenance,
    "check": _check,
    "event": _event,
    "reload": _reload,
}


def validate_args(command: str, args: Any) -> dict[str, Any]:
    """``args`` checked and normalised for ``command``; ControlError (code 2) if not valid."""
    if command not in VALIDATORS:
        raise invalid(f"unknown command {_show(command)}; expected one of {', '.join(COMMANDS)}")
    if not isinstance(args, dict):
        raise invalid(f"args must be a JSON object, got {type(args).__name__}")
    return VALIDATORS[command](args)


# -- encoding -------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_line(line: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(line.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid(f"the {what} is not a JSON object on one line") from None
    if not isinstance(value, dict):
        raise invalid(f"the {what} is not a JSON object on one line")
    return value


def _dump_line(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def encode_request(command: str, args: Mapping[str, Any]) -> bytes:
    """The request line; the arguments are validated first."""
    validate_args(command, dict(args))
    line = _dump_line({"version": VERSION, "command": command, "args": dict(args)})
    if len(line) > MAX_REQUEST:
        raise invalid(f"the request is larger than {MAX_REQUEST} bytes")
    return line


def decode_request(line: bytes) -> Request:
    """Parse and validate one request line; ControlError (code 2) if it is not valid."""
    if len(line) > MAX_REQUEST:
        raise invalid(f"the request is larger than {MAX_REQUEST} bytes")
    raw = _load_line(line, "request")
    version = raw.get("version")
    if type(version) is not int or version != VERSION:
        raise invalid(f"unsupported protocol version {_show(version)}; expected {VERSION}")
    unknown = sorted(set(raw) - {"version", "command", "args"})
    if unknown:
        raise invalid(f"unknown request field {_show(unknown[0])}")
    command = raw.get("command")
    if not isinstance(command, str):
        raise invalid("the request has no command")
    return Request(command, validate_args(command, raw.get("args", {})))


def encode_result(result: Mapping[str, Any]) -> bytes:
    """The success reply line; ValueError/TypeError if ``result`` is not JSON."""
    return _dump_line({"version": VERSION, "ok": True, "result": dict(result)})


def encode_error(message: str, code: ErrorCode = ErrorCode.FAILED) -> bytes:
    if code not in (ErrorCode.FAILED, ErrorCode.INVALID):
        raise ValueError(f"an error reply carries code 1 or 2, not {int(code)}")
    return _dump_line({"version": VERSION, "ok": False, "error": message, "code": int(code)})


def decode_reply(line: bytes) -> dict[str, Any]:
    """The result of a reply line; ControlError with the reply's code for an error reply.

    A reply that is not a valid reply is a failure (code 1), not the caller's fault.
    """
    try:
        raw = _load_line(line, "reply")
    except ControlError:
        raise ControlError("the daemon sent a reply that is not JSON") from None
    if raw.get("version") != VERSION:
        raise ControlError(f"the daemon speaks protocol version {_show(raw.get('version'))}")
    if raw.get("ok") is True and isinstance(raw.get("result"), dict):
        result: dict[str, Any] = raw["result"]
        return result
    error, code = raw.get("error"), raw.get("code")
    if raw.get("ok") is False and isinstance(error, str) and code in (1, 2):
        raise ControlError(error, ErrorCode(code))
    raise ControlError("the daemon sent a malformed reply")
