"""The supervisor's ledger handling: persistence, expiry, requests, readiness."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from carpctl.core.ledger import Ledger, LedgerError
from carpctl.daemon.config import parse
from carpctl.daemon.supervisor import Supervisor


class Sink:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.applied: list[int] = []

    def apply_demotion(self) -> None:
        self.applied.append(self.ledger.total)


def supervisor(state_dir: Path) -> tuple[Supervisor, Sink]:
    config = parse(f'[carpctl]\nstate_dir = "{state_dir}"\n')
    ledger = Ledger()
    sink = Sink(ledger)
    return Supervisor(config, ledger, sink), sink


def test_operator_shares_and_maintenance_survive_a_restart(tmp_path: Path) -> None:
    first, sink = supervisor(tmp_path)
    asyncio.run(first.handle_demote({"delta": 50, "reason": "patching"}))
    asyncio.run(first.handle_demote({"set": 30, "as": "db"}))
    asyncio.run(first.handle_maintenance({"on": True}))
    assert sink.applied[-1] == 50 + 30 + 240
    first.check_failing("web", 20, "HTTP 500")  # not persisted: re-derived by the checks
    # kill -9: nothing but the state file remains.
    second, _ = supervisor(tmp_path)
    second.restore()
    assert second.ledger.total == 50 + 30 + 240
    names = {e.name for e in second.ledger.entries()}
    assert names == {"operator", "operator:db", "maintenance"}
    asyncio.run(second.handle_maintenance({"on": False}))
    third, _ = supervisor(tmp_path)
    third.restore()
    assert third.ledger.total == 80


def test_a_refused_request_changes_nothing(tmp_path: Path) -> None:
    sup, sink = supervisor(tmp_path)
    asyncio.run(sup.handle_demote({"delta": 50}))
    with pytest.raises(LedgerError, match="negative"):
        asyncio.run(sup.handle_demote({"delta": -60}))
    assert sup.ledger.total == 50
    assert sink.applied == [50]
    saved = json.loads((tmp_path / "ledger.json").read_text())
    assert [e["amount"] for e in saved["entries"]] == [50]


def test_a_corrupt_state_file_is_reported_and_ignored(tmp_path: Path) -> None:
    (tmp_path / "ledger.json").write_text("{torn")
    sup, _ = supervisor(tmp_path)
    sup.restore()
    assert sup.ledger.total == 0


def test_timed_demotion_expires_and_is_unapplied(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        sup, sink = supervisor(tmp_path)
        sup.start(asyncio.get_running_loop())
        await sup.handle_demote({"delta": 40, "for": 0.2})
        await asyncio.sleep(0.5)
        sup.stop()
        return sink.applied

    assert asyncio.run(scenario()) == [40, 0]
    saved = json.loads((tmp_path / "ledger.json").read_text())
    assert saved["entries"] == []


def test_readiness_gate_holds_full_demotion_until_ready(tmp_path: Path) -> None:
    sup, sink = supervisor(tmp_path)
    sup.gate_until_ready()
    assert sup.ledger.total == 240
    sup.check_failing("web", 50, "connection refused")
    sup.ready()
    assert sink.applied[-1] == 50
    sup.check_passing("web")
    assert sink.applied[-1] == 0
