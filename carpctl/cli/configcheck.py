"""``carpctl config check``: validate the configuration and show what would run."""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

from carpctl.cli.common import CliError, ExitCode
from carpctl.daemon.config import DEFAULT_PATH, Config, ConfigError, VhidSection, load
from carpctl.health.spec import CheckSpec

NAME = "config"
HELP = "validate the configuration and print what would run"
DESCRIPTION = """\
  carpctl config check [-c FILE]

Load the configuration exactly as `carpctl run` does and print what it
would run: the backend, the control socket, the state directory, the
engine-wide CARP settings, and each vhid with its interface, addresses,
advbase/advskew, timing, peer and virtual MAC. Passwords are never printed,
only whether one is set. The daemon is not contacted.

Exit codes: 0 the configuration is valid; 2 it is not (the file, the key
and what was expected, in one sentence)."""


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="validate and print what would run", description=HELP)
    check.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help=f"configuration file (default {DEFAULT_PATH})",
    )


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _backend(config: Config) -> str:
    from carpctl.daemon.run import BackendUnavailable, resolve_backend

    try:
        resolved = resolve_backend(config)
    except BackendUnavailable as error:
        return f"{config.carpctl.backend} (cannot run on this machine: {error})"
    if resolved == config.carpctl.backend:
        return resolved
    return f"{config.carpctl.backend} ({resolved} on this machine)"


def _vhid(vhid: VhidSection) -> list[str]:
    peer = "multicast" if vhid.peer is None else f"{vhid.peer} (unicast)"
    mac = f"00:00:5e:00:01:{vhid.vhid:02x}" if vhid.virtual_mac else "no"
    return [
        f"vhid {vhid.name}",
        f"  interface    {vhid.interface}",
        f"  addresses    {', '.join(str(a) for a in vhid.addresses)}",
        f"  advbase      {vhid.advbase}",
        f"  advskew      {vhid.advskew}",
        f"  timing       {vhid.timing.value}",
        f"  peer         {peer}",
        f"  virtual_mac  {mac}",
        f"  password     {'set' if vhid.key else 'none'}",
    ]


def describe(check: CheckSpec) -> str:
    """The probe's own settings, those that differ from the defaults.

    Environment values of command checks are left out: they may be secrets.
    """
    parts = []
    for field in dataclasses.fields(check.params):
        value = getattr(check.params, field.name)
        if value == field.default:
            continue
        if field.name == "env":
            value = ",".join(name for name, _ in value)
        elif isinstance(value, re.Pattern):
            value = value.pattern
        elif isinstance(value, tuple):
            value = " ".join(str(v) for v in value)
        parts.append(f"{field.name}={value}")
    return ", ".join(parts) or "defaults"


def _check(check: CheckSpec) -> list[str]:
    stock = f" (stock: {check.use})" if check.use else ""
    return [
        f"check {check.name}: {check.kind}{stock}",
        f"  probes       {describe(check)}",
        f"  every        {check.interval:g}s, timeout {check.timeout:g}s, "
        f"rise {check.rise}, fall {check.fall}, demote {check.demote}",
    ]


def render(config: Config) -> str:
    carp = config.carp
    lines = [
        f"{config.path}: valid",
        f"backend         {_backend(config)}",
        f"control_socket  {config.carpctl.control_socket}",
        f"state_dir       {config.carpctl.state_dir}",
        f"log_format      {config.carpctl.log_format}",
        f"metrics_listen  {config.carpctl.metrics_listen or 'off'}",
        f"carp            allow {_yes(carp.allow)}, preempt {_yes(carp.preempt)}, "
        f"log {carp.log}, ifdown_demotion_factor {carp.ifdown_demotion_factor}, "
        f"senderr_demotion_factor {carp.senderr_demotion_factor}",
    ]
    for vhid in config.vhids:
        lines += ["", *_vhid(vhid)]
    for check in config.checks:
        lines += ["", *_check(check)]
    if not config.vhids:
        lines += ["", "no vhids"]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        config = load(args.config or DEFAULT_PATH)
    except ConfigError as error:
        raise CliError(ExitCode.USAGE, str(error)) from None
    sys.stdout.write(render(config) + "\n")
    return ExitCode.OK
