"""carpctl.daemon.plan: what a reload changes, and what of it disrupts this node."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from ipaddress import ip_address, ip_interface
from pathlib import Path
from typing import Any

import pytest

from carpctl.core.timing import Timing
from carpctl.daemon.config import CarpctlSection, CarpSection, Config, VhidSection, parse
from carpctl.daemon.plan import Change, ItemDiff, Plan, VhidDiff, diff

OLD_SECRET, NEW_SECRET = "hunter2-OLD", "hunter2-NEW"
V1 = VhidSection(
    vhid=1,
    interface="lab0",
    addresses=(ip_interface("198.51.100.100/24"), ip_interface("2001:db8::100/64")),
    key=OLD_SECRET.encode(),
)
V2 = replace(V1, vhid=2, addresses=(ip_interface("198.51.100.102/24"),))
A3 = ip_interface("198.51.100.103/24")


def config(*vhids: VhidSection, **sections: Any) -> Config:
    return Config(path=Path("/etc/carpctl/carpctl.toml"), vhids=vhids, **sections)


def visible(plan: Plan) -> str:
    """Everything the plan shows anyone."""
    return plan.render() + json.dumps(plan.to_json()) + (plan.refusal() or "")


def test_the_same_config_is_an_empty_plan() -> None:
    plan = diff(config(V1, V2), config(V1, V2), {"1@lab0": "MASTER"})
    assert plan == Plan()
    assert plan.empty
    assert not plan.disruptive
    assert plan.refusal() is None
    assert plan.render() == "No changes: the new configuration is the one in force."
    assert plan.to_json() == {
        "vhids": [],
        "checks": [],
        "services": [],
        "settings": [],
        "disruptions": [],
        "disruptive": False,
    }


def test_reordering_addresses_or_vhids_changes_nothing() -> None:
    swapped = replace(V1, addresses=V1.addresses[::-1])
    assert diff(config(V1, V2), config(V2, swapped), {"1@lab0": "MASTER"}).empty


@pytest.mark.parametrize(
    ("role", "disruptive"), [("MASTER", True), ("BACKUP", False), ("INIT", False), (None, False)]
)
def test_removing_a_vhid_disrupts_only_its_master(role: str | None, disruptive: bool) -> None:
    roles = {} if role is None else {"1@lab0": role}
    plan = diff(config(V1, V2), config(V2), roles)
    assert plan.vhids == (
        VhidDiff(
            "1@lab0",
            "removed",
            role,
            disruptive=("removing it drops its addresses and mastership",) if disruptive else (),
        ),
    )
    assert plan.disruptive is disruptive
    if disruptive:
        assert plan.disruptions == (
            "1@lab0 (MASTER): removing it drops its addresses and mastership",
        )


def test_adding_a_vhid_never_disrupts() -> None:
    plan = diff(config(V2), config(V1, V2), {"2@lab0": "MASTER"})
    assert plan.vhids == (
        VhidDiff("1@lab0", "added", addresses_added=("198.51.100.100/24", "2001:db8::100/64")),
    )
    assert not plan.disruptive
    assert "+ vhid 1@lab0: added (198.51.100.100/24, 2001:db8::100/64)" in plan.render()


MASTER_ONLY = ("MASTER",)
BOTH = ("MASTER", "BACKUP")
NEVER = ()


@pytest.mark.parametrize(
    ("new", "changes", "added", "removed", "disruptive_for"),
    [
        (replace(V1, advbase=2), [Change("advbase", "1", "2")], (), (), NEVER),
        (replace(V1, advskew=100), [Change("advskew", "0", "100")], (), (), NEVER),
        (replace(V1, key=NEW_SECRET.encode()), [Change("password")], (), (), BOTH),
        (replace(V1, key=b""), [Change("password")], (), (), BOTH),
        (replace(V1, addresses=V1.addresses[:1]), [], (), ("2001:db8::100/64",), BOTH),
        (replace(V1, addresses=(*V1.addresses, A3)), [], ("198.51.100.103/24",), (), BOTH),
        (
            replace(V1, addresses=(ip_interface("198.51.100.100/25"), V1.addresses[1])),
            [],
            ("198.51.100.100/25",),
            ("198.51.100.100/24",),
            BOTH,
        ),
        (
            replace(V1, peer=ip_address("198.51.100.2")),
            [Change("peer", "multicast", "198.51.100.2")],
            (),
            (),
            MASTER_ONLY,
        ),
        (
            replace(V1, timing=Timing.OPENBSD),
            [Change("timing", "freebsd", "openbsd")],
            (),
            (),
            NEVER,
        ),
        (
            replace(V1, virtual_mac=True),
            [Change("virtual_mac", "false", "true")],
            (),
            (),
            MASTER_ONLY,
        ),
        (
            replace(V1, advskew=5, key=NEW_SECRET.encode(), addresses=(A3,)),
            [Change("advskew", "0", "5"), Change("password")],
            ("198.51.100.103/24",),
            ("198.51.100.100/24", "2001:db8::100/64"),
            BOTH,
        ),
    ],
)
def test_every_vhid_key_and_who_it_disrupts(
    new: VhidSection,
    changes: list[Change],
    added: tuple[str, ...],
    removed: tuple[str, ...],
    disruptive_for: tuple[str, ...],
) -> None:
    for role in ("MASTER", "BACKUP", "INIT", None):
        roles = {"2@lab0": "MASTER"} | ({} if role is None else {"1@lab0": role})
        plan = diff(config(V1, V2), config(new, V2), roles)
        (change,) = plan.vhids
        assert (change.name, change.action, change.role, change.was) == (
            "1@lab0",
            "changed",
            role,
            None,
        )
        assert list(change.changes) == changes
        assert (change.addresses_added, change.addresses_removed) == (added, removed)
        assert bool(change.disruptive) is (role in disruptive_for)
        assert plan.disruptions == tuple(f"1@lab0 ({role}): {r}" for r in change.disruptive)
        assert OLD_SECRET not in visible(plan)
        assert NEW_SECRET not in visible(plan)


def test_why_each_change_disrupts_a_master() -> None:
    new = replace(
        V1,
        key=b"x",
        addresses=(A3,),
        peer=ip_address("198.51.100.2"),
        virtual_mac=True,
    )
    (change,) = diff(config(V1), config(new), {"1@lab0": "MASTER"}).vhids
    assert change.disruptive == (
        "it would drop addresses it holds",
        "peers reject its advertisements until they use the same password, "
        "and take over (split brain)",
        "its advertisements stop going to multicast: a backup there stops hearing it "
        "and takes over (split brain)",
        "its addresses move to another MAC address: removed and added again",
    )
    (added,) = diff(
        config(V1), config(replace(V1, addresses=(*V1.addresses, A3))), {"1@lab0": "MASTER"}
    ).vhids
    assert added.disruptive == (
        "its address set is authenticated: peers reject its advertisements until they "
        "list the same addresses, and take over (split brain)",
    )
    (backup,) = diff(config(V1), config(replace(V1, key=b"x")), {"1@lab0": "BACKUP"}).vhids
    assert backup.disruptive == (
        "with a different password it rejects the master's advertisements and takes over "
        "while the master still holds the addresses (split brain)",
    )


def test_priority_changes_are_notes_not_disruptions() -> None:
    roles = {"1@lab0": "MASTER", "2@lab0": "BACKUP"}
    plan = diff(
        config(V1, replace(V2, advskew=50)),
        config(replace(V1, advskew=200), replace(V2, advskew=10)),
        roles,
    )
    assert not plan.disruptive
    master, backup = plan.vhids
    assert master.notes == (
        "a lower priority (advbase/advskew up): it stays MASTER unless a peer preempts "
        "it, which is a clean handover, like a demotion",
    )
    assert backup.notes == (
        "a higher priority: with [carp] preempt it takes over cleanly from a slower master",
    )
    assert "note: a lower priority" in plan.render()
    # A better priority on the master and a worse one on a backup: nothing to say.
    plan = diff(config(replace(V1, advbase=3)), config(replace(V1, advbase=1)), roles)
    assert plan.vhids[0].notes == ()


def test_a_vhid_moved_to_another_interface_is_one_change() -> None:
    moved = replace(V1, interface="lab1")
    for role, disruptive in (("MASTER", True), ("BACKUP", False)):
        plan = diff(config(V1, V2), config(moved, V2), {"1@lab0": role})
        assert plan.vhids == (
            VhidDiff(
                "1@lab1",
                "changed",
                role,
                was="1@lab0",
                changes=(Change("interface", "lab0", "lab1"),),
                disruptive=("moving it to lab1 drops its addresses on lab0",) if disruptive else (),
            ),
        )
    assert plan.render().startswith("~ vhid 1@lab0 -> 1@lab1 (BACKUP): changed\n")


def test_a_renumbered_vhid_is_one_change_when_its_addresses_stay() -> None:
    renumbered = replace(V1, vhid=9)
    plan = diff(config(V1, V2), config(renumbered, V2), {"1@lab0": "MASTER"})
    assert plan.vhids == (
        VhidDiff(
            "9@lab0",
            "changed",
            "MASTER",
            was="1@lab0",
            changes=(Change("vhid", "1", "9"),),
            disruptive=("renumbering it to vhid 9 drops vhid 1",),
        ),
    )
    assert plan.disruptions == ("1@lab0 (MASTER): renumbering it to vhid 9 drops vhid 1",)
    # Other addresses too: a vhid removed and another added.
    other = replace(V1, vhid=9, addresses=(A3,))
    plan = diff(config(V1), config(other), {"1@lab0": "MASTER"})
    assert [(v.name, v.action) for v in plan.vhids] == [("1@lab0", "removed"), ("9@lab0", "added")]


def test_ambiguous_moves_stay_removals_and_additions() -> None:
    old = config(V1, replace(V1, interface="lab1"))
    new = config(replace(V1, interface="lab2"))
    plan = diff(old, new, {})
    assert [(v.name, v.action) for v in plan.vhids] == [
        ("1@lab0", "removed"),
        ("1@lab1", "removed"),
        ("1@lab2", "added"),
    ]


def test_settings_backend_and_allow() -> None:
    old = config(V1)
    new = config(
        V1,
        carpctl=CarpctlSection(backend="embedded", state_dir=Path("/srv/carpctl")),
        carp=CarpSection(allow=False, preempt=True),
    )
    plan = diff(old, new, {"1@lab0": "MASTER", "7@em0": "MASTER", "2@lab0": "BACKUP"})
    assert plan.settings == (
        Change("carpctl.backend", "auto", "embedded"),
        Change("carpctl.state_dir", "/var/lib/carpctl", "/srv/carpctl"),
        Change("carp.allow", "true", "false"),
        Change("carp.preempt", "false", "true"),
    )
    assert plan.disruptions == (
        "carpctl.backend changes: 1@lab0, 7@em0 (MASTER) would be dropped with the auto backend",
        "carp.allow becomes false: every vhid goes to INIT, so 1@lab0, 7@em0 (MASTER) "
        "would give up mastership and addresses",
    )
    # Without mastership, or allowing again, nothing is lost.
    assert not diff(old, new, {"1@lab0": "BACKUP"}).disruptive
    allowing = diff(config(V1, carp=CarpSection(allow=False)), old, {"1@lab0": "MASTER"})
    assert allowing.settings == (Change("carp.allow", "false", "true"),)
    assert not allowing.disruptive
    assert "~ carp.preempt false -> true" in plan.render()


CHECKS = """
[[check]]
name = "web"
kind = "http"
url = "http://monitor:{secret}@127.0.0.1:8080/health"

[[check]]
name = "db"
kind = "tcp"
host = "127.0.0.1"
port = 5432

[[check]]
name = "script"
kind = "command"
argv = ["/usr/local/bin/probe"]
env = {{ TOKEN = "{secret}" }}
"""


def test_checks_added_removed_and_changed_without_their_settings() -> None:
    old = parse(CHECKS.format(secret=OLD_SECRET))
    new_text = CHECKS.format(secret=NEW_SECRET).replace('name = "db"', 'name = "pg"')
    new = parse(new_text.replace('kind = "http"', 'kind = "http"\ninterval = 5.0\ndemote = 80'))
    plan = diff(old, new, {"1@lab0": "MASTER"})
    assert plan.checks == (
        ItemDiff(
            "web",
            "changed",
            (
                Change("interval", "2", "5"),
                Change("demote", "50", "80"),
                Change("params.url"),
            ),
        ),
        ItemDiff("db", "removed"),
        ItemDiff("script", "changed", (Change("params.env"),)),
        ItemDiff("pg", "added"),
    )
    assert not plan.disruptive
    assert OLD_SECRET not in visible(plan)
    assert NEW_SECRET not in visible(plan)
    assert "~ check web: changed (interval 2 -> 5, demote 50 -> 80, params.url changed)" in (
        plan.render()
    )
    kind = parse(CHECKS.format(secret="x").replace('kind = "tcp"\nhost = "127.0.0.1"\n', "")
                 .replace("port = 5432", 'kind = "file"\npath = "/run/ok"'))  # fmt: skip
    changed = diff(old, kind, {}).checks
    assert changed[1] == ItemDiff(
        "db", "changed", (Change("kind", "tcp", "file"), Change("params"))
    )


@dataclass(frozen=True)
class Service:
    name: str
    unit: str
    vhids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ServiceConfig(Config):
    services: tuple[Service, ...] = ()


def test_services_by_name_when_the_config_has_them() -> None:
    path = Path("/etc/carpctl/carpctl.toml")
    old = ServiceConfig(path, services=(Service("haproxy", "haproxy.service"), Service("a", "a")))
    new = ServiceConfig(
        path,
        services=(Service("haproxy", "haproxy.service", ("1@lab0",)), Service("b", "b")),
    )
    plan = diff(old, new, {"1@lab0": "MASTER"})
    assert plan.services == (
        ItemDiff("haproxy", "changed", (Change("vhids"),)),
        ItemDiff("a", "removed"),
        ItemDiff("b", "added"),
    )
    assert "~ service haproxy: changed (vhids changed)" in plan.render()
    assert diff(config(), new, {}).services == (
        ItemDiff("haproxy", "added"),
        ItemDiff("b", "added"),
    )
    assert diff(config(), config(), {}).services == ()


def everything() -> Plan:
    old = replace(
        parse(CHECKS.format(secret=OLD_SECRET)), vhids=(V1, V2, replace(V1, vhid=3, key=b""))
    )
    new = replace(
        parse(CHECKS.format(secret=NEW_SECRET)),
        vhids=(replace(V1, interface="lab1"), replace(V2, key=NEW_SECRET.encode())),
        carp=CarpSection(allow=False),
    )
    return diff(old, new, {"1@lab0": "MASTER", "2@lab0": "BACKUP", "3@lab0": "MASTER"})


def test_json_round_trips_and_shows_no_password() -> None:
    plan = everything()
    assert plan.disruptive
    wire = json.loads(json.dumps(plan.to_json()))
    assert wire["disruptive"] is True
    assert Plan.from_json(wire) == plan
    assert OLD_SECRET not in visible(plan)
    assert NEW_SECRET not in visible(plan)
    assert {"key": "password", "old": None, "new": None} in wire["vhids"][1]["changes"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: p.pop("vhids"), "plan.vhids: missing"),
        (lambda p: p.update(checks={}), "plan.checks: expected list"),
        (lambda p: p["vhids"][0].update(action="moved"), "plan.vhids[0].action: expected one of"),
        (lambda p: p["vhids"][1]["changes"][0].update(old=5), "plan.vhids[1].changes[0].old"),
        (lambda p: p["vhids"][0].update(notes=[1]), "plan.vhids[0].notes: expected a list of str"),
        (lambda p: p["disruptions"].append(None), "plan.disruptions: expected a list of strings"),
    ],
)
def test_from_json_names_what_is_out_of_shape(mutate: Any, message: str) -> None:
    wire = json.loads(json.dumps(everything().to_json()))
    mutate(wire)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Plan.from_json(wire)
    with pytest.raises(ValueError, match=r"^plan\.vhids: missing$"):
        Plan.from_json(None)


def test_render_and_refusal() -> None:
    plan = everything()
    text = plan.render()
    assert text.splitlines()[:4] == [
        "~ vhid 1@lab0 -> 1@lab1 (MASTER): changed",
        "    interface lab0 -> lab1",
        "    DISRUPTIVE: moving it to lab1 drops its addresses on lab0",
        "~ vhid 2@lab0 (BACKUP): changed",
    ]
    assert "- vhid 3@lab0 (MASTER): removed" in text
    assert "\nDisruptive (applied only with --force):\n  1@lab0 (MASTER): moving it" in text
    assert plan.refusal() == (
        "refused a disruptive change, 1@lab0 (MASTER): moving it to lab1 drops its addresses "
        f"on lab0 (and {len(plan.disruptions) - 1} more); nothing was changed: see the plan "
        "with --dry-run, then use --force to apply it anyway"
    )
    calm = diff(config(V1), config(replace(V1, advskew=9)), {"1@lab0": "BACKUP"})
    assert calm.render().endswith(
        "\n\nNothing disruptive: this node keeps its addresses and mastership."
    )
