"""Reload (SIGHUP, ``carpctl reload``): validate, plan, then apply in place.

A bad config keeps the old one running. The plan (carpctl.daemon.plan)
says what changes; one that would drop mastership or an address on a
MASTER is refused unless forced. What applies in place: vhids added,
removed or changed (a changed one restarts as BACKUP; unchanged vhids are
untouched, so their mastership survives), checks, services, ``[carp]``
preempt/log/demotion factors. ``[carpctl]`` settings (backend, socket,
state directory, logging) need a restart and are refused.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from carpctl.control.protocol import ControlError, ErrorCode
from carpctl.daemon.config import Config, ConfigError, load
from carpctl.daemon.plan import Plan, diff

if TYPE_CHECKING:
    from carpctl.daemon.run import Daemon

RESTART_ONLY = ("carpctl.",)  # settings keys that a running daemon cannot change
NEW_INTERFACE = "a vhid on an interface the daemon does not watch yet needs a restart"


def _same_file(given: str, own: str) -> bool:
    try:
        return os.path.samefile(given, own)
    except OSError:
        return False


def _restart_only(plan: Plan, daemon: Daemon, new: Config) -> str | None:
    for change in plan.settings:
        if change.key.startswith(RESTART_ONLY):
            return f"{change.key} cannot change while running: restart carpctl"
    if daemon.engine is not None:
        known = {h.section.interface for h in daemon.engine.hosts}
        for vhid in new.vhids:
            if vhid.interface not in known:
                return f"{vhid.name}: {NEW_INTERFACE}"
    return None


async def reload(daemon: Daemon, args: dict[str, Any]) -> dict[str, Any]:
    """The ``reload`` request (also SIGHUP, with no flags)."""
    own = str(daemon.config.path)
    if args.get("config") and not _same_file(str(args["config"]), own):
        raise ControlError(
            f"this daemon runs with {own} and reloads only that file", ErrorCode.INVALID
        )
    try:
        new = load(own)
    except ConfigError as error:
        raise ControlError(
            f"{error}; the running configuration is kept", ErrorCode.INVALID
        ) from None
    plan = diff(daemon.config, new, daemon.roles_now())
    result: dict[str, Any] = {"applied": False, "plan": plan.to_json(), "refused": None}
    if args.get("dry_run"):
        return result
    refusal = _restart_only(plan, daemon, new) or (None if args.get("force") else plan.refusal())
    if refusal is not None:
        result["refused"] = refusal
        return result
    await apply(daemon, new, plan)
    result["applied"] = True
    return result


async def apply(daemon: Daemon, new: Config, plan: Plan) -> None:
    old = daemon.config
    daemon.config = new
    daemon.supervisor.config = new
    engine = daemon.engine
    if engine is not None:
        engine.config = new
        if new.carp.preempt != old.carp.preempt:
            engine.set_preempt(new.carp.preempt)
        sections = {v.name: v for v in new.vhids}
        for change in plan.vhids:
            if change.action in ("removed", "changed"):
                engine.remove_vhid(change.was or change.name)
            if change.action in ("added", "changed"):
                engine.add_vhid(sections[change.name])
    if plan.checks:
        await daemon.replace_checks(new)
    if plan.services:
        await daemon.replace_services(new)
