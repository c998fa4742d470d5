"""One VhidMachine driven by hand: the transition table, effects and errors."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest

from carpctl.core import auth, wire
from carpctl.core.effects import (
    Announce,
    AssignAddresses,
    ReleaseAddresses,
    SendAdvertisement,
    SplitBrainSeen,
    State,
    StateChanged,
)
from carpctl.core.errors import DropReason, LocalProtocolError, RemoteProtocolError
from carpctl.core.machine import VhidMachine
from carpctl.core.transitions import TRANSITIONS, Trigger, classify_as_backup, classify_as_master
from carpctl.core.vhid import VhidConfig

PEER = IPv4Address("198.51.100.2")
KEY = b"secret"


def config(**kwargs: object) -> VhidConfig:
    values: dict[str, object] = {
        "vhid": 1,
        "addresses": (ip_address("198.51.100.100"),),
        "key": KEY,
    }
    values.update(kwargs)
    return VhidConfig(**values)  # type: ignore[arg-type]


def advert(
    advbase: int = 1,
    advskew: int = 0,
    demote: int = 0,
    counter: int = 7,
    cfg: VhidConfig | None = None,
) -> wire.CarpHeader:
    cfg = cfg or config()
    digest = auth.compute_digest(cfg.key, cfg.vhid, cfg.hashed, counter)
    header = wire.CarpHeader(cfg.vhid, advbase, advskew, counter, digest, demote=demote)
    return wire.decode(wire.encode(header))


def machine_in(state: State, **kwargs: object) -> VhidMachine:
    m = VhidMachine(config(**kwargs), random_counter=lambda: 1234)
    m.link_up(0.0)
    if state is State.MASTER:
        m.handle_timer(100.0)
    assert m.state is state
    return m


def test_init_has_no_timer_and_ignores_advertisements() -> None:
    m = VhidMachine(config())
    assert (m.state, m.get_timer()) == (State.INIT, None)
    assert m.receive(advert(), family=4, src=PEER, ttl=255, now=1.0) == []
    assert m.state is State.INIT


def test_backup_arms_the_master_down_timer_and_fires_only_when_due() -> None:
    m = machine_in(State.BACKUP, advskew=100)
    assert m.get_timer() == pytest.approx(3 + 100 / 256)
    assert m.handle_timer(3.0) == []
    assert m.state is State.BACKUP


def test_becoming_master_advertises_then_assigns_then_announces() -> None:
    m = machine_in(State.BACKUP)
    effects = m.handle_timer(3.0)
    kinds = [type(e) for e in effects]
    assert kinds == [StateChanged, SendAdvertisement, AssignAddresses, Announce]
    ad = effects[1]
    assert isinstance(ad, SendAdvertisement)
    assert wire.decode(ad.payload) == ad.header
    assert (ad.header.advbase, ad.header.advskew, ad.family) == (1, 0, 4)
    assert m.get_timer() == pytest.approx(4.0)


def test_a_second_announcement_comes_with_the_second_advertisement_and_before_it() -> None:
    m = machine_in(State.MASTER)
    first = m.handle_timer(101.0)
    second = m.handle_timer(102.0)
    third = m.handle_timer(103.0)
    assert [type(e) for e in first] == [SendAdvertisement]
    # Before it: a peer preempting on this advertisement announces after us.
    assert [type(e) for e in second] == [Announce, SendAdvertisement]
    assert [type(e) for e in third] == [SendAdvertisement]


def test_advertisement_cadence_does_not_drift_with_late_wakeups() -> None:
    m = machine_in(State.MASTER)
    m.handle_timer(101.004)  # woke 4 ms late
    assert m.get_timer() == pytest.approx(102.0)
    m.handle_timer(250.0)  # stalled (SIGSTOP): restart from now
    assert m.get_timer() == pytest.approx(251.0)


def test_dual_stack_master_sends_one_advertisement_per_family_with_one_digest() -> None:
    m = machine_in(
        State.BACKUP, addresses=(ip_address("198.51.100.100"), ip_address("2001:db8::100"))
    )
    ads = [e for e in m.handle_timer(3.0) if isinstance(e, SendAdvertisement)]
    assert [a.family for a in ads] == [4, 6]
    assert ads[0].payload == ads[1].payload


@pytest.mark.parametrize(
    ("local", "remote", "preempt", "expected"),
    [
        ((1, 0), (1, 100), True, Trigger.SLOWER_MASTER_PREEMPTABLE),
        ((1, 0), (1, 100), False, Trigger.MASTER_ALIVE),
        ((1, 100), (1, 0), True, Trigger.MASTER_ALIVE),
        ((1, 100), (1, 100), True, Trigger.MASTER_ALIVE),  # equal is not slower
        ((1, 0), (4, 0), False, Trigger.MASTER_WILL_TIME_OUT),  # (3, 0) < (4, 0)
        ((1, 0), (3, 0), False, Trigger.MASTER_ALIVE),
        ((1, 240), (255, 255), False, Trigger.BOW_OUT),
    ],
)
def test_backup_classification(
    local: tuple[int, int], remote: tuple[int, int], preempt: bool, expected: Trigger
) -> None:
    header = advert(*remote)
    assert classify_as_backup(local, 0, header, preempt, local[0]) is expected


def test_backup_with_advbase_zero_skips_the_will_time_out_rule() -> None:
    assert classify_as_backup((0, 10), 0, advert(1, 0), False, 0) is Trigger.MASTER_ALIVE


def test_openbsd_demote_byte_rules() -> None:
    demoted = advert(1, 0, demote=1)
    # A BACKUP replaces a more demoted master, even without preempt.
    assert classify_as_backup((1, 100), 0, demoted, False, 1) is Trigger.MORE_DEMOTED_MASTER
    # A MASTER yields to a less demoted one, whatever the skews.
    assert classify_as_master((1, 0), 2, advert(1, 200, demote=1)) is Trigger.LESS_DEMOTED_MASTER
    # A better-skewed but more demoted advertisement does not win.
    assert classify_as_master((1, 100), 0, demoted) is Trigger.WORSE_MASTER
    # Preempt needs the remote demote to be at least ours.
    assert classify_as_backup((1, 0), 1, advert(1, 100), True, 1) is not (
        Trigger.SLOWER_MASTER_PREEMPTABLE
    )


@pytest.mark.parametrize(
    ("local", "remote", "expected"),
    [
        ((1, 100), (1, 0), Trigger.BETTER_MASTER),
        ((1, 0), (1, 0), Trigger.BETTER_MASTER),  # kernels yield on a tie
        ((1, 0), (1, 100), Trigger.WORSE_MASTER),
        ((2, 0), (1, 240), Trigger.BETTER_MASTER),  # advbase compares first
        ((1, 0), (255, 255), Trigger.PEER_LEAVING),
    ],
)
def test_master_classification(
    local: tuple[int, int], remote: tuple[int, int], expected: Trigger
) -> None:
    assert classify_as_master(local, 0, advert(*remote)) is expected


def test_tie_break_by_source_address_when_known() -> None:
    low, high = IPv4Address("198.51.100.1"), IPv4Address("198.51.100.2")
    tie = advert(1, 0)
    assert classify_as_master((1, 0), 0, tie, my_address=low, their_address=high) is (
        Trigger.WORSE_MASTER
    )
    assert classify_as_master((1, 0), 0, tie, my_address=high, their_address=low) is (
        Trigger.BETTER_MASTER
    )


def test_master_yields_to_a_better_advertisement_and_releases() -> None:
    m = machine_in(State.MASTER, advskew=100)
    effects = m.receive(advert(1, 0), family=4, src=PEER, ttl=255, now=100.5)
    assert m.state is State.BACKUP
    assert [type(e) for e in effects] == [StateChanged, ReleaseAddresses]
    assert m.get_timer() == pytest.approx(100.5 + 3 + 100 / 256)


def test_master_hearing_a_worse_master_stays_reannounces_and_reports_split_brain() -> None:
    m = machine_in(State.MASTER)
    effects = m.receive(advert(1, 100), family=4, src=PEER, ttl=255, now=100.5)
    assert m.state is State.MASTER
    assert [type(e) for e in effects] == [Announce, SplitBrainSeen]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"ttl": 254}, DropReason.BADTTL),
        ({"family": 6}, DropReason.BADVHID),
    ],
)
def test_rejected_advertisements_change_nothing(kwargs: dict[str, int], reason: DropReason) -> None:
    m = machine_in(State.MASTER, advskew=100)
    timer = m.get_timer()
    args: dict[str, int] = {"family": 4, "ttl": 255}
    args.update(kwargs)
    with pytest.raises(RemoteProtocolError) as caught:
        m.receive(advert(1, 0), src=PEER, now=100.5, **args)
    assert caught.value.reason is reason
    assert (m.state, m.get_timer(), m.master_seen) == (State.MASTER, timer, None)


def test_bad_hmac_is_rejected_without_any_change() -> None:
    m = machine_in(State.BACKUP)
    wrong = advert(1, 0, cfg=config(key=b"other"))
    with pytest.raises(RemoteProtocolError) as caught:
        m.receive(wrong, family=4, src=PEER, ttl=255, now=1.0)
    assert caught.value.reason is DropReason.BADAUTH
    assert m.get_timer() == pytest.approx(3.0)  # not restarted


def test_unicast_peers_may_skip_the_ttl_check_as_freebsd_does() -> None:
    m = machine_in(State.BACKUP)
    m.receive(advert(1, 0), family=4, src=PEER, ttl=64, now=1.0, check_ttl=False)
    assert m.get_timer() == pytest.approx(4.0)


def test_ipv6_link_local_in_the_vhid_is_left_out_of_the_sent_digest() -> None:
    addresses = (ip_address("198.51.100.100"), IPv6Address("fe80::1"), ip_address("2001:db8::1"))
    m = machine_in(State.BACKUP, addresses=addresses)
    ad = next(e for e in m.handle_timer(3.0) if isinstance(e, SendAdvertisement))
    without = auth.VirtualHostAddresses.of(a for a in addresses if not a.is_link_local)
    assert ad.header.digest == auth.compute_digest(KEY, 1, without, ad.header.counter)


def test_demotion_changes_readvertise_at_once_only_when_the_skew_changes() -> None:
    m = machine_in(State.MASTER, advskew=200)
    [ad] = m.set_demotion(30, 100.2)
    assert isinstance(ad, SendAdvertisement)
    assert ad.header.advskew == 230
    assert m.get_timer() == pytest.approx(100.2 + 1 + 230 / 256)
    ad = next(e for e in m.set_demotion(40, 100.3) if isinstance(e, SendAdvertisement))
    assert ad.header.advskew == 240
    assert m.set_demotion(500, 100.4) == []  # still clamped at 240: nothing to tell
    assert m.effective_skew == 240


def test_demote_count_is_carried_in_byte_4() -> None:
    m = machine_in(State.MASTER)
    [ad] = m.set_demote_count(3, 100.1)
    assert isinstance(ad, SendAdvertisement)
    assert ad.payload[4] == 3
    with pytest.raises(LocalProtocolError):
        m.set_demote_count(256, 100.2)


def test_shutdown_bows_out_as_master_and_is_quiet_as_backup() -> None:
    master = machine_in(State.MASTER)
    effects = master.shutdown(100.5)
    assert [type(e) for e in effects] == [StateChanged, SendAdvertisement, ReleaseAddresses]
    ad = effects[1]
    assert isinstance(ad, SendAdvertisement)
    assert ad.header.is_bow_out
    assert master.get_timer() is None
    backup = machine_in(State.BACKUP)
    assert [type(e) for e in backup.shutdown(1.0)] == [StateChanged]


def test_link_down_goes_to_init_and_link_up_restarts_as_backup() -> None:
    m = machine_in(State.MASTER)
    effects = m.link_down(100.5)
    assert [type(e) for e in effects] == [StateChanged, ReleaseAddresses]
    assert (m.state, m.get_timer()) == (State.INIT, None)
    m.link_up(101.0)
    assert m.state is State.BACKUP


def test_admin_force() -> None:
    m = machine_in(State.BACKUP)
    m.force(State.MASTER, 1.0)
    assert m.state is State.MASTER
    m.force(State.BACKUP, 2.0)
    assert m.state is State.BACKUP
    with pytest.raises(LocalProtocolError):
        m.force(State.INIT, 3.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"vhid": 0},
        {"vhid": 256},
        {"advbase": 256},
        {"advskew": 255},
        {"advbase": 0, "advskew": 0},
        {"addresses": ()},
        {"key": b"x" * 20},
    ],
)
def test_invalid_config_is_a_local_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(LocalProtocolError):
        config(**kwargs)


def test_every_transition_into_a_new_state_has_a_reason() -> None:
    for (state, trigger), transition in TRANSITIONS.items():
        if transition.target is not state:
            assert transition.reason is not None, trigger
        else:
            assert transition.reason is None, trigger
            assert transition.actions, trigger


def test_a_late_takeover_keeps_the_deadlines_cadence() -> None:
    """Vhids that time out together stay in step even if processed one by one."""
    m = machine_in(State.BACKUP)  # master-down due at 3.0
    m.handle_timer(3.05)
    assert m.state is State.MASTER
    assert m.get_timer() == pytest.approx(4.0)
