"""What a reload would change, and which of it would disrupt this node. Pure.

``diff(old, new, roles)`` compares two loaded configs; ``roles`` maps each
vhid's devd-style name (``1@em0``) to its current role (``MASTER``,
``BACKUP``, ``INIT``). A change is *disruptive* (the daemon applies it only
with ``--force``) when, the peers' configs being unchanged, applying it now
would make this node give up an address or mastership abruptly, or would
make two nodes hold the same addresses (split brain):

* on a MASTER vhid: removing it, moving it to another interface or vhid
  number, removing or adding an address (the address set is part of the
  HMAC, carp-protocol.md §3.2: peers reject our advertisements until they
  list the same set, then take over), changing the password (same), the
  unicast peer (the old peer stops hearing us and takes over) or
  ``virtual_mac`` (the addresses move to another MAC);
* on a BACKUP vhid: changing the password or the address set (it would
  reject the master's advertisements and take over within the master-down
  time while the master still holds the addresses);
* for every MASTER vhid: ``[carpctl] backend`` changing (the engine is
  replaced) and ``[carp] allow`` becoming false (every vhid goes to INIT).

Raising a MASTER's advbase or advskew is *not* disruptive: a MASTER yields
only to a better advertisement and backups never advertise (§4.5), so it
stays MASTER unless a peer preempts it (§4.4: preempt on and a better
priority, or the "master will time out" rule when the new advbase exceeds
three times a peer's). Either way that is a clean handover, the same as a
demotion, which needs no ``--force`` either: the plan carries a note.

Nothing here prints a password, a check's probe settings (URLs and
environments may hold secrets) or a service's commands: only that they
changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from carpctl.daemon.config import Config, VhidSection
from carpctl.health.spec import CheckSpec

MASTER = "MASTER"
BACKUP = "BACKUP"
ACTIONS = ("added", "removed", "changed")
Action = Literal["added", "removed", "changed"]

T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    """One key that changes; ``old``/``new`` are None when the values are not shown."""

    key: str
    old: str | None = None
    new: str | None = None

    def text(self) -> str:
        if self.old is None or self.new is None:
            return f"{self.key} changed"
        return f"{self.key} {self.old} -> {self.new}"


@dataclass(frozen=True)
class VhidDiff:
    name: str  # the new name; the old one when removed
    action: Action
    role: str | None = None  # the current role of the old vhid, from ``roles``
    was: str | None = None  # the old name when the interface or the vhid number changes
    changes: tuple[Change, ...] = ()
    addresses_added: tuple[str, ...] = ()
    addresses_removed: tuple[str, ...] = ()
    disruptive: tuple[str, ...] = ()  # why applying it would disrupt this node
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ItemDiff:
    """A check or a service, by name."""

    name: str
    action: Action
    changes: tuple[Change, ...] = ()


@dataclass(frozen=True)
class Plan:
    vhids: tuple[VhidDiff, ...] = ()
    checks: tuple[ItemDiff, ...] = ()
    services: tuple[ItemDiff, ...] = ()
    settings: tuple[Change, ...] = ()  # "[carpctl]" and "[carp]" keys: "carp.preempt"
    disruptions: tuple[str, ...] = ()  # every reason, as "1@em0 (MASTER): ..."

    @property
    def disruptive(self) -> bool:
        return bool(self.disruptions)

    @property
    def empty(self) -> bool:
        return not (self.vhids or self.checks or self.services or self.settings)

    def refusal(self) -> str | None:
        """The sentence refusing a disruptive plan without --force; None if not disruptive."""
        if not self.disruptions:
            return None
        more = len(self.disruptions) - 1
        also = f" (and {more} more)" if more else ""
        return (
            f"refused a disruptive change, {self.disruptions[0]}{also}; nothing was "
            "changed: see the plan with --dry-run, then use --force to apply it anyway"
        )

    def render(self) -> str:
        return render(self)

    def to_json(self) -> dict[str, Any]:
        return {
            "vhids": [_vhid_json(v) for v in self.vhids],
            "checks": [_item_json(i) for i in self.checks],
            "services": [_item_json(i) for i in self.services],
            "settings": [_change_json(c) for c in self.settings],
            "disruptions": list(self.disruptions),
            "disruptive": self.disruptive,
        }

    @classmethod
    def from_json(cls, value: Any) -> Plan:
        """The plan ``to_json`` gave; ValueError naming the first thing out of shape."""
        return _plan_from_json(value)


# -- diff ---------------------------------------------------------------------------


def diff(old: Config, new: Config, roles: Mapping[str, str]) -> Plan:
    """What changes from ``old`` to ``new``, with this node's current ``roles``."""
    vhids = _vhids(old.vhids, new.vhids, roles)
    settings = _settings(old, new)
    masters = sorted(name for name, role in roles.items() if role == MASTER)
    disruptions = [
        f"{v.was or v.name} ({v.role}): {reason}" for v in vhids for reason in v.disruptive
    ]
    if masters:
        held = ", ".join(masters)
        if old.carpctl.backend != new.carpctl.backend:
            disruptions.append(
                f"carpctl.backend changes: {held} (MASTER) would be dropped with the "
                f"{old.carpctl.backend} backend"
            )
        if old.carp.allow and not new.carp.allow:
            disruptions.append(
                f"carp.allow becomes false: every vhid goes to INIT, so {held} (MASTER) "
                "would give up mastership and addresses"
            )
    return Plan(
        vhids=vhids,
        checks=_items(old.checks, new.checks, _check_changes),
        services=_items(
            getattr(old, "services", ()), getattr(new, "services", ()), _service_changes
        ),
        settings=settings,
        disruptions=tuple(disruptions),
    )


def _pairs(removed: list[VhidSection], added: list[VhidSection]) -> dict[str, VhidSection]:
    """Old name -> new vhid, for vhids that moved to another interface or vhid number.

    Paired only when unambiguous: the same vhid number on one side each, or
    else the same interface and address set on one side each.
    """
    pairs: dict[str, VhidSection] = {}
    keys: tuple[Callable[[VhidSection], object], ...] = (
        lambda v: v.vhid,
        lambda v: (v.interface, frozenset(v.addresses)),
    )
    for key in keys:
        left = [v for v in removed if v.name not in pairs]
        right = [v for v in added if all(v is not p for p in pairs.values())]
        for old in left:
            mine = [v for v in left if key(v) == key(old)]
            theirs = [v for v in right if key(v) == key(old)]
            if len(mine) == 1 and len(theirs) == 1:
                pairs[old.name] = theirs[0]
    return pairs


def _vhids(
    old: Sequence[VhidSection], new: Sequence[VhidSection], roles: Mapping[str, str]
) -> tuple[VhidDiff, ...]:
    old_names = {v.name for v in old}
    new_by_name = {v.name: v for v in new}
    removed = [v for v in old if v.name not in new_by_name]
    added = [v for v in new if v.name not in old_names]
    pairs = _pairs(removed, added)
    out: list[VhidDiff] = []
    for before in old:
        role = roles.get(before.name)
        after = new_by_name.get(before.name) or pairs.get(before.name)
        if after is None:
            reasons = ("removing it drops its addresses and mastership",) if role == MASTER else ()
            out.append(VhidDiff(before.name, "removed", role, disruptive=reasons))
            continue
        changed = _vhid_change(before, after, role)
        if changed is not None:
            out.append(changed)
    paired = [id(v) for v in pairs.values()]
    out += [
        VhidDiff(v.name, "added", roles.get(v.name), addresses_added=_texts(v.addresses))
        for v in added
        if id(v) not in paired
    ]
    return tuple(out)


def _texts(values: Iterable[object]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _peer(vhid: VhidSection) -> str:
    return "multicast" if vhid.peer is None else str(vhid.peer)


def _flag(value: bool) -> str:
    return "true" if value else "false"


# Keys compared with their values shown; "key" (the password) is compared, never shown.
_SHOWN: dict[str, Callable[[VhidSection], str]] = {
    "interface": lambda v: v.interface,
    "vhid": lambda v: str(v.vhid),
    "advbase": lambda v: str(v.advbase),
    "advskew": lambda v: str(v.advskew),
    "peer": _peer,
    "timing": lambda v: str(v.timing.value),
    "virtual_mac": lambda v: _flag(v.virtual_mac),
}


def _vhid_change(old: VhidSection, new: VhidSection, role: str | None) -> VhidDiff | None:
    changes = [
        Change(key, show(old), show(new)) for key, show in _SHOWN.items() if show(old) != show(new)
    ]
    if old.key != new.key:
        changes.append(Change("password"))
    # Keys added to VhidSection later: named, their values never shown.
    known = {*_SHOWN, "key", "addresses"}
    changes += [
        Change(f.name)
        for f in dataclasses.fields(VhidSection)
        if f.name not in known and getattr(old, f.name) != getattr(new, f.name)
    ]
    gone = _texts(a for a in old.addresses if a not in new.addresses)
    came = _texts(a for a in new.addresses if a not in old.addresses)
    if not (changes or gone or came):
        return None
    keys = {c.key for c in changes}
    return VhidDiff(
        name=new.name,
        action="changed",
        role=role,
        was=old.name if old.name != new.name else None,
        changes=tuple(changes),
        addresses_added=came,
        addresses_removed=gone,
        disruptive=_vhid_disruptions(old, new, role, keys),
        notes=_vhid_notes(old, new, role),
    )


def _vhid_disruptions(
    old: VhidSection, new: VhidSection, role: str | None, keys: set[str]
) -> tuple[str, ...]:
    gone = any(a not in new.addresses for a in old.addresses)
    came = any(a not in old.addresses for a in new.addresses)
    reasons = []
    if role == MASTER:
        if "interface" in keys:
            reasons.append(f"moving it to {new.interface} drops its addresses on {old.interface}")
        if "vhid" in keys:
            reasons.append(f"renumbering it to vhid {new.vhid} drops vhid {old.vhid}")
        if gone:
            reasons.append("it would drop addresses it holds")
        if came and not gone:
            reasons.append(
                "its address set is authenticated: peers reject its advertisements "
                "until they list the same addresses, and take over (split brain)"
            )
        if "password" in keys:
            reasons.append(
                "peers reject its advertisements until they use the same password, "
                "and take over (split brain)"
            )
        if "peer" in keys:
            reasons.append(
                f"its advertisements stop going to {_peer(old)}: a backup there "
                "stops hearing it and takes over (split brain)"
            )
        if "virtual_mac" in keys:
            reasons.append("its addresses move to another MAC address: removed and added again")
    elif role == BACKUP and ("password" in keys or gone or came):
        what = "password" if "password" in keys else "address set"
        reasons.append(
            f"with a different {what} it rejects the master's advertisements and "
            "takes over while the master still holds the addresses (split brain)"
        )
    return tuple(reasons)


def _vhid_notes(old: VhidSection, new: VhidSection, role: str | None) -> tuple[str, ...]:
    if role == MASTER and (new.advbase, new.advskew) > (old.advbase, old.advskew):
        return (
            "a lower priority (advbase/advskew up): it stays MASTER unless a peer "
            "preempts it, which is a clean handover, like a demotion",
        )
    if role == BACKUP and (new.advbase, new.advskew) < (old.advbase, old.advskew):
        return (
            "a higher priority: with [carp] preempt it takes over cleanly from a slower master",
        )
    return ()


# -- checks, services, settings --------------------------------------------------------


def _items(
    old: Iterable[T], new: Iterable[T], compare: Callable[[T, T], tuple[Change, ...]]
) -> tuple[ItemDiff, ...]:
    old_by = {_item_name(i): i for i in old}
    new_by = {_item_name(i): i for i in new}
    out: list[ItemDiff] = []
    for name, before in old_by.items():
        if name not in new_by:
            out.append(ItemDiff(name, "removed"))
        elif before != new_by[name]:
            out.append(ItemDiff(name, "changed", compare(before, new_by[name])))
    out += [ItemDiff(name, "added") for name in new_by if name not in old_by]
    return tuple(out)


def _item_name(item: object) -> str:
    return str(getattr(item, "name", item))


def _number(value: object) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_changes(old: CheckSpec, new: CheckSpec) -> tuple[Change, ...]:
    changes = [
        Change(key, _number(getattr(old, key)), _number(getattr(new, key)))
        for key in ("kind", "use", "interval", "timeout", "rise", "fall", "demote")
        if getattr(old, key) != getattr(new, key)
    ]
    if old.kind != new.kind:
        return (*changes, Change("params"))
    changes += [
        Change(f"params.{f.name}")  # probe settings may hold secrets: names only
        for f in dataclasses.fields(old.params)
        if getattr(old.params, f.name) != getattr(new.params, f.name)
    ]
    return tuple(changes)


def _service_changes(old: object, new: object) -> tuple[Change, ...]:
    """Names of the fields that differ (never values: commands may hold secrets)."""
    if dataclasses.is_dataclass(old) and dataclasses.is_dataclass(new) and type(old) is type(new):
        return tuple(
            Change(f.name)
            for f in dataclasses.fields(old)
            if getattr(old, f.name) != getattr(new, f.name)
        )
    return ()


def _settings(old: Config, new: Config) -> tuple[Change, ...]:
    changes = []
    for section in ("carpctl", "carp"):
        before, after = getattr(old, section), getattr(new, section)
        for f in dataclasses.fields(before):
            a, b = getattr(before, f.name), getattr(after, f.name)
            if a != b:
                shown = (_flag(a), _flag(b)) if isinstance(a, bool) else (str(a), str(b))
                changes.append(Change(f"{section}.{f.name}", *shown))
    return tuple(changes)


# -- rendering ----------------------------------------------------------------------


def _label(v: VhidDiff) -> str:
    name = v.name if v.was is None else f"{v.was} -> {v.name}"
    return f"vhid {name}" + (f" ({v.role})" if v.role else "")


def _vhid_lines(v: VhidDiff) -> list[str]:
    if v.action == "added":
        lines = [f"+ {_label(v)}: added ({', '.join(v.addresses_added)})"]
    elif v.action == "removed":
        lines = [f"- {_label(v)}: removed"]
    else:
        lines = [f"~ {_label(v)}: changed"]
        lines += [f"    {c.text()}" for c in v.changes]
        if v.addresses_added:
            lines.append(f"    addresses added: {', '.join(v.addresses_added)}")
        if v.addresses_removed:
            lines.append(f"    addresses removed: {', '.join(v.addresses_removed)}")
    lines += [f"    DISRUPTIVE: {reason}" for reason in v.disruptive]
    lines += [f"    note: {note}" for note in v.notes]
    return lines


def _item_line(kind: str, item: ItemDiff) -> str:
    mark = {"added": "+", "removed": "-", "changed": "~"}[item.action]
    text = f"{mark} {kind} {item.name}: {item.action}"
    if item.changes:
        text += f" ({', '.join(c.text() for c in item.changes)})"
    return text


def render(plan: Plan) -> str:
    """The plan for people: one line per change, then the verdict."""
    if plan.empty:
        return "No changes: the new configuration is the one in force."
    lines: list[str] = []
    for v in plan.vhids:
        lines += _vhid_lines(v)
    lines += [_item_line("check", i) for i in plan.checks]
    lines += [_item_line("service", i) for i in plan.services]
    lines += [f"~ {c.text()}" for c in plan.settings]
    if plan.disruptive:
        lines += ["", "Disruptive (applied only with --force):"]
        lines += [f"  {reason}" for reason in plan.disruptions]
    else:
        lines += ["", "Nothing disruptive: this node keeps its addresses and mastership."]
    return "\n".join(lines)


# -- JSON -----------------------------------------------------------------------------


def _change_json(c: Change) -> dict[str, Any]:
    return {"key": c.key, "old": c.old, "new": c.new}


def _item_json(i: ItemDiff) -> dict[str, Any]:
    return {"name": i.name, "action": i.action, "changes": [_change_json(c) for c in i.changes]}


def _vhid_json(v: VhidDiff) -> dict[str, Any]:
    return {
        "name": v.name,
        "action": v.action,
        "role": v.role,
        "was": v.was,
        "changes": [_change_json(c) for c in v.changes],
        "addresses_added": list(v.addresses_added),
        "addresses_removed": list(v.addresses_removed),
        "disruptive": list(v.disruptive),
        "notes": list(v.notes),
    }


def _get(value: Any, key: str, where: str, kind: type[T]) -> T:
    if not isinstance(value, dict) or key not in value:
        raise ValueError(f"{where}.{key}: missing")
    item = value[key]
    if not isinstance(item, kind):
        raise ValueError(f"{where}.{key}: expected {kind.__name__}")
    return item


def _text_or_none(value: Any, key: str, where: str) -> str | None:
    if isinstance(value, dict) and value.get(key, "") is None:
        return None
    return _get(value, key, where, str)


def _strings(value: Any, key: str, where: str) -> tuple[str, ...]:
    items = _get(value, key, where, list)
    if not all(isinstance(i, str) for i in items):
        raise ValueError(f"{where}.{key}: expected a list of strings")
    return tuple(items)


def _objects(value: Any, key: str, where: str) -> list[tuple[str, Any]]:
    return [(f"{where}.{key}[{n}]", i) for n, i in enumerate(_get(value, key, where, list))]


def _action(value: Any, where: str) -> Action:
    action = _get(value, "action", where, str)
    if action not in ACTIONS:
        raise ValueError(f"{where}.action: expected one of {', '.join(ACTIONS)}")
    return cast(Action, action)


def _change_from(value: Any, where: str) -> Change:
    return Change(
        _get(value, "key", where, str),
        _text_or_none(value, "old", where),
        _text_or_none(value, "new", where),
    )


def _changes_from(value: Any, where: str) -> tuple[Change, ...]:
    return tuple(_change_from(c, w) for w, c in _objects(value, "changes", where))


def _item_from(value: Any, where: str) -> ItemDiff:
    return ItemDiff(
        _get(value, "name", where, str), _action(value, where), _changes_from(value, where)
    )


def _vhid_from(value: Any, where: str) -> VhidDiff:
    return VhidDiff(
        name=_get(value, "name", where, str),
        action=_action(value, where),
        role=_text_or_none(value, "role", where),
        was=_text_or_none(value, "was", where),
        changes=_changes_from(value, where),
        addresses_added=_strings(value, "addresses_added", where),
        addresses_removed=_strings(value, "addresses_removed", where),
        disruptive=_strings(value, "disruptive", where),
        notes=_strings(value, "notes", where),
    )


def _plan_from_json(value: Any, where: str = "plan") -> Plan:
    return Plan(
        vhids=tuple(_vhid_from(v, w) for w, v in _objects(value, "vhids", where)),
        checks=tuple(_item_from(i, w) for w, i in _objects(value, "checks", where)),
        services=tuple(_item_from(i, w) for w, i in _objects(value, "services", where)),
        settings=tuple(_change_from(c, w) for w, c in _objects(value, "settings", where)),
        disruptions=_strings(value, "disruptions", where),
    )
