"""``carpctl config check``: validate the configuration and show what would run."""

from __future__ import annotations

import argparse
import sys

from carpctl.cli.common import CliError, ExitCode
from carpctl.daemon.config import DEFAULT_PATH, Config, ConfigError, VhidSection, load

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
