"""units/devd/carpctl.conf and units/ifstated/ifstated.conf, read as their daemons read them.

devd cannot run here. Its matching is emulated from FreeBSD's devd.cc:
every ``match`` pattern is compiled as ``"^" + pattern + "$"`` with
``REG_EXTENDED | REG_NOSUB | REG_ICASE`` and the event's variable must
match; Python's ``re`` with IGNORECASE accepts the same language for these
patterns (bracket expressions, groups, alternation and bounds mean the same
in POSIX ERE; ``$`` differs only before a trailing newline, which a devd
variable never has). The action's ``$name`` variables are replaced by the
event's values, as devd does before running it with ``/bin/sh -c``.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carpctl.cli import event
from carpctl.cli.common import CliError

UNITS = Path(__file__).resolve().parents[2] / "units"
DEVD = UNITS / "devd" / "carpctl.conf"
IFSTATED = UNITS / "ifstated" / "ifstated.conf"
CARPCTL = "/usr/local/bin/carpctl -c /usr/local/etc/carpctl.toml"


class Rule:
    """One ``notify`` block of a devd.conf: its matches and its action."""

    def __init__(self, text: str) -> None:
        (block,) = re.findall(r"^notify\s+\d+\s*\{(.*?)^\};", text, re.M | re.S)
        self.matches = {
            name: re.compile("^" + pattern + "$", re.IGNORECASE)
            for name, pattern in re.findall(r'^\s*match\s+"([^"]+)"\s+"([^"]*)";', block, re.M)
        }
        (self.action,) = re.findall(r'^\s*action\s+"([^"]*)";', block, re.M)

    def fire(self, line: str) -> str | None:
        """The command devd would run for an event line, or None if the rule does not match."""
        assert line.startswith("!")
        return self.fire_with(dict(word.split("=", 1) for word in line[1:].split()))

    def fire_with(self, variables: dict[str, str]) -> str | None:
        """The command for an event's variables, or None if the rule does not match."""
        for name, pattern in self.matches.items():
            if pattern.search(variables.get(name, "")) is None:
                return None
        return re.sub(r"\$([A-Za-z][A-Za-z0-9_-]*)", lambda m: variables[m[1]], self.action)


RULE = Rule(DEVD.read_text())


@pytest.fixture
def rule() -> Rule:
    return RULE


def test_the_rule_matches_system_subsystem_and_type(rule: Rule) -> None:
    assert set(rule.matches) == {"system", "subsystem", "type"}
    assert rule.action == f"{CARPCTL} event $subsystem $type"


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("!system=CARP subsystem=1@em0 type=MASTER", ["1@em0", "MASTER"]),
        ("!system=CARP subsystem=255@vtnet0.100 type=BACKUP", ["255@vtnet0.100", "BACKUP"]),
        ("!system=CARP subsystem=17@lagg0 type=INIT", ["17@lagg0", "INIT"]),
        ("!system=CARP subsystem=3@wan_1 type=MASTER", ["3@wan_1", "MASTER"]),
    ],
)
def test_carp_events_run_carpctl_event(rule: Rule, line: str, argv: list[str]) -> None:
    command = rule.fire(line)
    assert command is not None
    words = shlex.split(command)
    assert words[:4] == [*CARPCTL.split(), "event"]
    assert words[4:] == argv
    event.parse(words[4:])  # and carpctl event accepts what it is given


@pytest.mark.parametrize(
    "line",
    [
        "!system=CARP subsystem=1@em0;rm type=MASTER",  # shell syntax
        "!system=CARP subsystem=1@em0$(reboot) type=MASTER",
        "!system=CARP subsystem=1@em0`id` type=MASTER",
        "!system=CARP subsystem=1@em0|sh type=MASTER",
        "!system=CARP subsystem=1@em0&&x type=MASTER",
        "!system=CARP subsystem=300@em0 type=MASTER",  # no such vhid
        "!system=CARP subsystem=256@em0 type=MASTER",
        "!system=CARP subsystem=0@em0 type=MASTER",
        "!system=CARP subsystem=01@em0 type=MASTER",  # leading zero
        "!system=CARP subsystem=1@ type=MASTER",
        "!system=CARP subsystem=1@-em0 type=MASTER",  # would read as an option
        "!system=CARP subsystem=1@abcdefghijklmnop type=MASTER",  # 16 > IFNAMSIZ-1
        "!system=CARP subsystem=em0 type=MASTER",
        "!system=CARP subsystem=1@em0 type=MASTERX",
        "!system=CARP subsystem=1@em0 type=",
        "!system=CARP subsystem=1@em0",
        "!system=IFNET subsystem=1@em0 type=MASTER",
        "!system=CARPX subsystem=1@em0 type=MASTER",  # anchored: no prefix matches
        "!system=IFNET subsystem=em0 type=LINK_UP",
    ],
)
def test_anything_else_runs_nothing(rule: Rule, line: str) -> None:
    assert rule.fire(line) is None


def test_matching_ignores_case_as_devd_does(rule: Rule) -> None:
    command = rule.fire("!system=carp subsystem=1@EM0 type=MASTER")
    assert command == f"{CARPCTL} event 1@EM0 MASTER"


SAFE = re.compile(r"[A-Za-z0-9@._-]+")  # nothing a shell would interpret


NEAR_MISSES = st.from_regex(r"\A[0-9]{1,3}@[0-9A-Za-z._;|&$`()' -]{0,17}\Z")


@given(st.one_of(st.text(alphabet=st.characters(codec="latin-1"), max_size=24), NEAR_MISSES))
def test_whatever_reaches_the_shell_is_inert_and_accepted_by_carpctl_event(value: str) -> None:
    command = RULE.fire_with({"system": "CARP", "subsystem": value, "type": "MASTER"})
    if command is None:
        return
    assert SAFE.fullmatch(value)
    event.parse([value, "MASTER"])  # never refused: carpctl event accepts it


@given(st.from_regex(r"\A[1-9][0-9]{0,2}@[A-Za-z0-9][A-Za-z0-9._-]{0,14}\Z"))
def test_every_name_carpctl_event_accepts_passes_the_rule(value: str) -> None:
    fired = RULE.fire_with({"system": "CARP", "subsystem": value, "type": "BACKUP"})
    try:
        event.parse([value, "BACKUP"])
    except CliError:
        assert fired is None  # e.g. vhid 300: refused by both
    else:
        assert fired is not None


# -- OpenBSD: ifstated ---------------------------------------------------------

IFSTATE_TYPE = {"up": "MASTER", "down": "BACKUP", "unknown": "INIT"}


def test_ifstated_reports_every_link_state_of_each_carp_interface() -> None:
    text = IFSTATED.read_text()
    assert re.search(r"^init-state carp$", text, re.M)
    pairs = re.findall(r'if (carp\d+)\.link\.(up|down|unknown) \{\s*run "([^"]+)"\s*\}', text)
    assert pairs
    by_interface: dict[str, dict[str, list[str]]] = {}
    for interface, state, command in pairs:
        words = shlex.split(command)
        assert words[:4] == [*CARPCTL.split(), "event"]
        event.parse(words[4:])
        assert words[5] == IFSTATE_TYPE[state]
        by_interface.setdefault(interface, {})[state] = words[4:]
    for interface, states in by_interface.items():
        assert set(states) == set(IFSTATE_TYPE), interface
        assert len({args[0] for args in states.values()}) == 1  # one vhid per carpN
    assert text.count("{") == text.count("}")
