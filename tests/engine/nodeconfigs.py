"""Hand-written node configs for engine tests that need more than the lab's default."""

from __future__ import annotations

import json
from pathlib import Path

from carpctl.lab import Cluster


def write_config(
    lab: Cluster,
    node: str,
    vhids: list[tuple[int, int, str]],
    *,
    virtual_mac: bool = False,
    preempt: bool = False,
    extra: str = "",
    password_file: str | None = None,
    metrics_listen: str = "",
) -> None:
    """Replace a node's config with the given (vhid, advskew, address) list.

    ``extra`` is appended as is (e.g. ``[[check]]`` tables); ``password_file``
    replaces the lab's shared one; ``metrics_listen`` goes in ``[carpctl]``.
    """
    host = lab.host(node)
    directory = Path(host.config).parent
    lines = [
        "[carpctl]",
        'backend = "embedded"',
        'log_format = "json"',
        f'state_dir = "{directory / "state"}"',
        f'control_socket = "{directory / "carpctl.sock"}"',
        f'metrics_listen = "{metrics_listen}"',
        "[carp]",
        "log = 2",
        f"preempt = {'true' if preempt else 'false'}",
    ]
    for vhid, advskew, address in vhids:
        lines += [
            "[[vhid]]",
            f"vhid = {vhid}",
            'interface = "lab0"',
            f"advskew = {advskew}",
            f'password_file = "{password_file or lab.state.password_file}"',
            f'addresses = ["{address}"]',
            f"virtual_mac = {'true' if virtual_mac else 'false'}",
        ]
    Path(host.config).write_text("\n".join(lines) + "\n" + extra)


def roles_by_vhid(lab: Cluster, node: str) -> dict[int, list[str]]:
    """Each vhid's state changes, in order, from the node's JSON log."""
    roles: dict[int, list[str]] = {}
    for line in lab.log(node).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "state changed":
            roles.setdefault(int(record["vhid"]), []).append(str(record["new"]))
    return roles


def current(lab: Cluster, node: str) -> dict[int, str]:
    return {vhid: changes[-1] for vhid, changes in roles_by_vhid(lab, node).items()}
