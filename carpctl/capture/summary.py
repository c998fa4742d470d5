"""Counts over many inspected packets, for ``inspect``'s summary line."""

from __future__ import annotations

from dataclasses import dataclass, field

from carpctl.capture.report import Inspection


@dataclass(slots=True)
class SourceTally:
    packets: int = 0
    advbase: int | None = None
    advskew: int | None = None
    hmac_bad: int = 0


@dataclass(slots=True)
class Tally:
    """Counts for the summary line: totals and, per vhid, the sources seen."""

    packets: int = 0  # protocol-112 packets
    carp: int = 0
    ok: int = 0
    bad_checksum: int = 0
    hmac_failures: int = 0
    truncated: int = 0
    not_carp: int = 0
    sources: dict[int, dict[str, SourceTally]] = field(default_factory=dict)

    def add(self, inspection: Inspection) -> None:
        self.packets += 1
        if not inspection.carp:
            self.not_carp += 1
            return
        self.carp += 1
        self.ok += inspection.ok
        self.bad_checksum += inspection.checksum == "bad"
        self.hmac_failures += inspection.hmac == "bad"
        self.truncated += inspection.truncated
        if inspection.vhid is None or inspection.src is None:
            return
        source = self.sources.setdefault(inspection.vhid, {}).setdefault(
            inspection.src, SourceTally()
        )
        source.packets += 1
        source.advbase, source.advskew = inspection.advbase, inspection.advskew
        source.hmac_bad += inspection.hmac == "bad"

    @property
    def failed(self) -> bool:
        """Some CARP packet is not acceptable (VRRP traffic does not count)."""
        return self.ok < self.carp
