"""The 36-byte CARP advertisement header (protocol reference section 2).

```
 0  version(4) | type(4)   0x21
 1  vhid                   1..255
 2  advskew
 3  authlen                7
 4  demote                 OpenBSD's demote count; 0 from FreeBSD and ucarp
 5  advbase
 6  checksum               Internet checksum over these 36 bytes
 8  counter                64 bits, big endian
16  HMAC-SHA1 digest       20 bytes
```
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from carpctl.core.checksum import internet_checksum
from carpctl.core.errors import DropReason, LocalProtocolError, RemoteProtocolError

CARP_VERSION = 2
CARP_TYPE_ADVERTISEMENT = 1
CARP_AUTHLEN = 7  # counter + digest in 32-bit words: 28 / 4
CARP_HEADER_LEN = 36
DIGEST_LEN = 20
IPPROTO_CARP = 112
CARP_IPV4_GROUP = "224.0.0.18"
CARP_IPV6_GROUP = "ff02::12"
CARP_TTL = 255

_HEADER = struct.Struct("!BBBBBBHQ20s")
assert _HEADER.size == CARP_HEADER_LEN


@dataclass(frozen=True, slots=True)
class CarpHeader:
    """One advertisement as it is on the wire, checksum included."""

    vhid: int
    advbase: int
    advskew: int
    counter: int
    digest: bytes
    demote: int = 0
    version: int = CARP_VERSION
    type: int = CARP_TYPE_ADVERTISEMENT
    authlen: int = CARP_AUTHLEN
    checksum: int = 0

    @property
    def is_bow_out(self) -> bool:
        """advbase 255 / advskew 255: the sender is leaving (OpenBSD's leave ad)."""
        return self.advbase == 255 and self.advskew == 255


def _check_byte(name: str, value: int) -> None:
    if not 0 <= value <= 255:
        raise LocalProtocolError(f"{name} must be 0..255, got {value}")


def encode(header: CarpHeader) -> bytes:
    """Serialize ``header``, computing the checksum (its ``checksum`` is ignored).

    Raises ``LocalProtocolError`` for values the wire cannot carry: a vhid
    outside 1..255, another byte field outside 0..255, version or type
    beyond 4 bits, a counter beyond 64 bits, a digest that is not 20 bytes.
    Version, type and authlen are not forced to CARP's values, so tests and
    tools can build VRRP-like packets.
    """
    if not 1 <= header.vhid <= 255:
        raise LocalProtocolError(f"vhid must be 1..255, got {header.vhid}")
    for name in ("advbase", "advskew", "demote", "authlen"):
        _check_byte(name, getattr(header, name))
    if not 0 <= header.version <= 15 or not 0 <= header.type <= 15:
        raise LocalProtocolError("version and type must each fit in 4 bits")
    if not 0 <= header.counter < 1 << 64:
        raise LocalProtocolError(f"counter must fit in 64 bits, got {header.counter}")
    if len(header.digest) != DIGEST_LEN:
        raise LocalProtocolError(f"digest must be {DIGEST_LEN} bytes, got {len(header.digest)}")
    unsummed = _HEADER.pack(
        header.version << 4 | header.type,
        header.vhid,
        header.advskew,
        header.authlen,
        header.demote,
        header.advbase,
        0,
        header.counter,
        header.digest,
    )
    checksum = internet_checksum(unsummed)
    return unsummed[:6] + checksum.to_bytes(2, "big") + unsummed[8:]


def parse(payload: bytes) -> CarpHeader:
    """Read the header fields without judging them (for ``inspect``).

    Raises ``RemoteProtocolError(BADLEN)`` only when fewer than 36 bytes are
    present; bytes after the first 36 are ignored, as the kernels do.
    """
    if len(payload) < CARP_HEADER_LEN:
        raise RemoteProtocolError(
            DropReason.BADLEN,
            f"truncated CARP header: {len(payload)} of {CARP_HEADER_LEN} bytes",
        )
    vt, vhid, advskew, authlen, demote, advbase, checksum, counter, digest = _HEADER.unpack_from(
        payload
    )
    return CarpHeader(
        vhid=vhid,
        advbase=advbase,
        advskew=advskew,
        counter=counter,
        digest=digest,
        demote=demote,
        version=vt >> 4,
        type=vt & 0x0F,
        authlen=authlen,
        checksum=checksum,
    )


def checksum_ok(payload: bytes) -> bool:
    """True when the checksum over the first 36 bytes verifies."""
    return len(payload) >= CARP_HEADER_LEN and internet_checksum(payload[:CARP_HEADER_LEN]) == 0


def not_carp_hint(payload: bytes) -> str | None:
    """Name the protocol that protocol 112 traffic is, when it is not CARP.

    IP protocol 112 and the groups 224.0.0.18 / ff02::12 are shared with
    VRRP (keepalived). A VRRPv2 advertisement also starts with 0x21, but its
    byte 3 is the address count and its length is 16 + 4 * count.
    """
    if not payload:
        return None
    version = payload[0] >> 4
    if version == 3:
        return "VRRPv3"
    if version == CARP_VERSION and len(payload) >= 4 and payload[3] != CARP_AUTHLEN:
        if len(payload) == 16 + 4 * payload[3]:
            return f"VRRPv2 (vrid {payload[1]}, {payload[3]} address(es))"
        return "VRRPv2 or another protocol-112 sender"
    return None


def decode(payload: bytes) -> CarpHeader:
    """Decode and validate a received advertisement's CARP bytes.

    Checks, in the kernels' order: length (BADLEN, naming VRRPv2 when the
    bytes look like one), checksum, version; then (stricter
    than the kernels, who always send them) type 1 and authlen 7, so VRRP on
    the shared group is told apart. vhid, TTL and HMAC need local context and
    are checked by the caller. Any failure raises ``RemoteProtocolError``.
    """
    if len(payload) < CARP_HEADER_LEN:
        hint = not_carp_hint(payload)
        raise RemoteProtocolError(
            DropReason.BADLEN,
            f"truncated CARP header: {len(payload)} of {CARP_HEADER_LEN} bytes"
            + (f"; looks like {hint}" if hint else ""),
        )
    header = parse(payload)
    if not checksum_ok(payload):
        hint = not_carp_hint(payload)
        raise RemoteProtocolError(
            DropReason.BADSUM,
            f"bad CARP checksum 0x{header.checksum:04x} (vhid {header.vhid})"
            + (f"; looks like {hint}" if hint else ""),
        )
    if header.version != CARP_VERSION:
        hint = not_carp_hint(payload)
        raise RemoteProtocolError(
            DropReason.BADVER,
            f"version {header.version}, expected {CARP_VERSION}"
            + (f"; looks like {hint}" if hint else ""),
        )
    if header.type != CARP_TYPE_ADVERTISEMENT:
        raise RemoteProtocolError(DropReason.BADTYPE, f"type {header.type} is not advertisement")
    if header.authlen != CARP_AUTHLEN:
        raise RemoteProtocolError(
            DropReason.NOTCARP,
            f"authlen {header.authlen}, expected {CARP_AUTHLEN}; "
            f"looks like {not_carp_hint(payload)}",
        )
    return header
