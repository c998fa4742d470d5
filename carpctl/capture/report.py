"""Judge one captured protocol-112 datagram: the CARP fields and what is wrong.

``inspect_record`` takes a capture record (see ``pcap``) and returns an
``Inspection``, or ``None`` when the frame is not an IP datagram of protocol
112. ``inspect_packet`` does the same from an already parsed ``IPPacket``.
Both use the core codec (``wire``, ``auth``, ``ip``) and never raise for bad
packet bytes: everything wrong is a sentence in ``problems``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv6Address, ip_address

from carpctl.capture.frames import Datagram, ip_datagram
from carpctl.capture.pcap import CaptureRecord
from carpctl.core import auth, wire
from carpctl.core.errors import RemoteProtocolError
from carpctl.core.ip import IPPacket, parse_ip

_GROUPS = {ip_address(wire.CARP_IPV4_GROUP), ip_address(wire.CARP_IPV6_GROUP)}
HMAC_ADVICE = (
    "check the password, the vhid and the address list (ucarp hashes exactly one IPv4 address)"
)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What verifying a digest needs: the key and the virtual host's addresses."""

    key: bytes
    addresses: auth.VirtualHostAddresses

    @classmethod
    def of(
        cls, password: bytes | str, addresses: Iterable[IPv4Address | IPv6Address]
    ) -> Credentials:
        return cls(auth.carp_key(password), auth.VirtualHostAddresses.of(addresses))

    def verifies(self, header: wire.CarpHeader) -> bool:
        return auth.verify_digest(
            self.key, header.vhid, self.addresses, header.counter, header.digest
        )


@dataclass(frozen=True, slots=True)
class Inspection:
    """One protocol-112 packet as ``carpctl inspect`` reports it.

    CARP fields are ``None`` when the packet is too short to hold them or
    is not CARP. ``checksum`` is "ok"/"bad" (``None`` when it cannot be
    judged), ``hmac`` "ok"/"bad"/"unchecked".
    """

    time: float | None = None
    src: str | None = None
    dst: str | None = None
    ttl: int | None = None
    src_mac: str | None = None
    vlans: tuple[int, ...] = ()
    carp: bool = True  # False: another protocol-112 sender (VRRP)
    truncated: bool = False  # fewer than 36 bytes of CARP
    version: int | None = None
    type: int | None = None
    vhid: int | None = None
    advskew: int | None = None
    authlen: int | None = None
    demote: int | None = None
    advbase: int | None = None
    checksum_value: int | None = None
    counter: int | None = None
    digest: str | None = None
    checksum: str | None = None
    hmac: str = "unchecked"
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """A CARP advertisement that a receiver would accept."""
        return self.carp and not self.problems

    def as_json(self) -> dict[str, object]:
        return {
            "time": self.time,
            "src": self.src,
            "dst": self.dst,
            "ttl": self.ttl,
            "vhid": self.vhid,
            "version": self.version,
            "type": self.type,
            "advbase": self.advbase,
            "advskew": self.advskew,
            "demote": self.demote,
            "counter": self.counter,
            "checksum": self.checksum,
            "hmac": self.hmac,
            "src_mac": self.src_mac,
            "vlans": list(self.vlans),
            "authlen": self.authlen,
            "checksum_value": self.checksum_value,
            "digest": self.digest,
            "carp": self.carp,
            "truncated": self.truncated,
            "ok": self.ok,
            "problems": list(self.problems),
            "notes": list(self.notes),
        }


def _partial(
    base: Inspection, payload: bytes, problems: tuple[str, ...], notes: tuple[str, ...]
) -> Inspection:
    """The fields a truncated CARP header still has."""

    def byte(at: int) -> int | None:
        return payload[at] if len(payload) > at else None

    def word(start: int, end: int) -> int | None:
        return int.from_bytes(payload[start:end], "big") if len(payload) >= end else None

    return replace(
        base,
        version=payload[0] >> 4 if payload else None,
        type=payload[0] & 0x0F if payload else None,
        vhid=byte(1),
        advskew=byte(2),
        authlen=byte(3),
        demote=byte(4),
        advbase=byte(5),
        checksum_value=word(6, 8),
        counter=word(8, 16),
        truncated=True,
        problems=problems,
        notes=notes,
    )


def inspect_record(
    record: CaptureRecord, credentials: Credentials | None = None
) -> Inspection | None:
    """Inspect one capture record; ``None`` unless it is IP protocol 112.

    Raises ``frames.UnsupportedLinkType`` for a link type that cannot be read.
    """
    datagram = ip_datagram(record.linktype, record.data)
    if datagram is None:
        return None
    notes = []
    if record.cut:
        notes.append(
            f"the capture kept only {len(record.data)} of {record.orig_len} bytes (snap length)"
        )
    try:
        packet = parse_ip(datagram.data)
    except RemoteProtocolError as error:
        return _unparsable(datagram, record.time, str(error))
    return inspect_packet(
        packet,
        time=record.time,
        src_mac=datagram.src_mac,
        vlans=datagram.vlans,
        credentials=credentials,
        notes=notes,
    )


def _unparsable(datagram: Datagram, time: float | None, problem: str) -> Inspection | None:
    """A datagram whose IP header the core refuses: report it if it is protocol 112."""
    data = datagram.data
    if data[:1] and data[0] >> 4 == 4 and len(data) >= 20 and data[9] == wire.IPPROTO_CARP:
        src, dst, ttl = str(IPv4Address(data[12:16])), str(IPv4Address(data[16:20])), data[8]
    elif data[:1] and data[0] >> 4 == 6 and len(data) >= 40 and data[6] == wire.IPPROTO_CARP:
        src, dst, ttl = str(IPv6Address(data[8:24])), str(IPv6Address(data[24:40])), data[7]
    else:
        return None
    return Inspection(
        time=time,
        src=src,
        dst=dst,
        ttl=ttl,
        src_mac=datagram.src_mac,
        vlans=datagram.vlans,
        problems=(f"unreadable IP header: {problem}",),
    )


def inspect_packet(
    packet: IPPacket,
    *,
    time: float | None = None,
    src_mac: str | None = None,
    vlans: tuple[int, ...] = (),
    credentials: Credentials | None = None,
    notes: Iterable[str] = (),
) -> Inspection | None:
    """Inspect an IP datagram; ``None`` unless its protocol is 112."""
    if packet.protocol != wire.IPPROTO_CARP:
        return None
    base = Inspection(
        time=time,
        src=str(packet.src),
        dst=str(packet.dst),
        ttl=packet.ttl,
        src_mac=src_mac,
        vlans=vlans,
    )
    problems: list[str] = []
    notes = list(notes)
    if not packet.header_checksum_ok:
        problems.append("bad IPv4 header checksum")
    payload = packet.payload
    hint = wire.not_carp_hint(payload)
    if hint is not None:
        problems.insert(0, f"not CARP: looks like {hint}")
        return replace(base, carp=False, problems=tuple(problems), notes=tuple(notes))
    if packet.ttl != wire.CARP_TTL:
        problems.append(f"TTL {packet.ttl}, expected {wire.CARP_TTL}: receivers drop it")
    try:
        header = wire.parse(payload)
    except RemoteProtocolError:
        problems.insert(0, f"truncated: {len(payload)} of {wire.CARP_HEADER_LEN} bytes")
        return _partial(base, payload, tuple(problems), tuple(notes))
    checksum_good = wire.checksum_ok(payload)
    if not checksum_good:
        problems.append(f"bad CARP checksum 0x{header.checksum:04x}")
    if header.version != wire.CARP_VERSION:
        problems.append(f"version {header.version}, expected {wire.CARP_VERSION}")
    if header.type != wire.CARP_TYPE_ADVERTISEMENT:
        problems.append(f"type {header.type}, expected 1 (advertisement)")
    hmac = "unchecked"
    if credentials is not None:
        hmac = "ok" if credentials.verifies(header) else "bad"
        if hmac == "bad":
            problems.append(f"HMAC does not verify: {hmac_hint(credentials, header)}")
    notes.extend(_notes(packet, header))
    return replace(
        base,
        version=header.version,
        type=header.type,
        vhid=header.vhid,
        advskew=header.advskew,
        authlen=header.authlen,
        demote=header.demote,
        advbase=header.advbase,
        checksum_value=header.checksum,
        counter=header.counter,
        digest=header.digest.hex(),
        checksum="ok" if checksum_good else "bad",
        hmac=hmac,
        problems=tuple(problems),
        notes=tuple(notes),
    )


def _notes(packet: IPPacket, header: wire.CarpHeader) -> list[str]:
    notes = []
    if header.is_bow_out:
        notes.append("bow-out: the sender is leaving (advbase 255, advskew 255)")
    if packet.dst not in _GROUPS:
        if packet.dst.is_multicast:
            notes.append("sent to a multicast group that is not CARP's")
        else:
            notes.append("unicast destination (peer mode)")
    extra = len(packet.payload) - wire.CARP_HEADER_LEN
    if extra > 0:
        notes.append(f"{extra} bytes after the CARP header (ignored)")
    return notes


def hmac_hint(credentials: Credentials, header: wire.CarpHeader) -> str:
    """Guess, cheaply, why a digest does not verify."""
    addresses = credentials.addresses
    everything: tuple[IPv4Address | IPv6Address, ...] = (
        *addresses.ipv4,
        *addresses.ipv6,
        *addresses.ipv6_link_local,
    )
    trials: list[tuple[Credentials, str]] = [
        (Credentials(b"", addresses), "it verifies with no password: the sender has none set"),
    ]
    stripped = credentials.key.strip()
    if stripped != credentials.key:
        trials.append(
            (
                Credentials(stripped, addresses),
                "it verifies without the password's leading/trailing whitespace",
            )
        )
    if len(everything) > 1:
        trials.extend(
            (
                Credentials(credentials.key, auth.VirtualHostAddresses.of([address])),
                f"it verifies with only {address} hashed (ucarp hashes exactly one IPv4 address)",
            )
            for address in everything
        )
    if addresses.ipv4 and (addresses.ipv6 or addresses.ipv6_link_local):
        trials.append(
            (
                Credentials(credentials.key, auth.VirtualHostAddresses.of(addresses.ipv4)),
                "it verifies with the IPv4 addresses only",
            )
        )
    for trial, explanation in trials:
        if trial.verifies(header):
            return explanation
    return HMAC_ADVICE
