"""CARP's HMAC-SHA1 (protocol reference section 3).

Message: 0x02 0x01 vhid, the IPv4 addresses sorted ascending, the IPv6
addresses sorted bytewise (link-local ones left out, as OpenBSD sends), then
the 8 counter bytes. Key: the passphrase truncated to 19 bytes, which under
RFC 2104's zero padding equals the kernels' 20-byte ``strlcpy`` buffer and
ucarp's NUL-terminated copy.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from carpctl.core.errors import LocalProtocolError
from carpctl.core.wire import CARP_TYPE_ADVERTISEMENT, CARP_VERSION, DIGEST_LEN

KEY_MAX_LEN = 19


def carp_key(passphrase: bytes | str) -> bytes:
    """The key the kernels and ucarp derive from a passphrase.

    ``strlcpy(key, pass, 20)`` semantics: the passphrase ends at its first
    NUL byte (a C string), and at most 19 bytes of it are used. A ``str``
    is taken as UTF-8 and truncated by bytes, as the C tools do.
    """
    raw = passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)
    return raw.split(b"\x00", 1)[0][:KEY_MAX_LEN]


_IPV4_NEVER_HASHED = {IPv4Address(0), IPv4Address(2**32 - 1)}
_IPV6_NEVER_HASHED = {IPv6Address(0), IPv6Address(2**128 - 1)}


def _hashed_ipv6(address: IPv6Address) -> IPv6Address:
    """The 16 bytes the kernels hash: no scope id, link-local scope word zeroed."""
    packed = address.packed
    if address.is_link_local:
        packed = packed[:2] + b"\x00\x00" + packed[4:]
    return IPv6Address(packed)


@dataclass(frozen=True, slots=True)
class VirtualHostAddresses:
    """The address set a vhid hashes, in hashing order.

    Always normalized, however it is built: each tuple sorted ascending
    (numeric order, which is bytewise order) without duplicates; IPv6
    link-local addresses (fe80::/10) only in ``ipv6_link_local``, with any
    scope id dropped and bytes 2-3 zeroed as the kernels hash them; and the
    addresses the kernels' selection sort can never pick (0.0.0.0,
    255.255.255.255, ::, ffff:...:ffff) left out.
    """

    ipv4: tuple[IPv4Address, ...]
    ipv6: tuple[IPv6Address, ...]  # global/ULA addresses only
    ipv6_link_local: tuple[IPv6Address, ...]

    def __post_init__(self) -> None:
        v4 = set(self.ipv4) - _IPV4_NEVER_HASHED
        v6 = {_hashed_ipv6(a) for a in (*self.ipv6, *self.ipv6_link_local)}
        v6 -= _IPV6_NEVER_HASHED
        object.__setattr__(self, "ipv4", tuple(sorted(v4)))
        object.__setattr__(self, "ipv6", tuple(sorted(a for a in v6 if not a.is_link_local)))
        object.__setattr__(self, "ipv6_link_local", tuple(sorted(a for a in v6 if a.is_link_local)))

    @classmethod
    def of(cls, addresses: Iterable[IPv4Address | IPv6Address]) -> VirtualHostAddresses:
        given = tuple(addresses)  # may be a one-shot iterator
        return cls(
            ipv4=tuple(a for a in given if isinstance(a, IPv4Address)),
            ipv6=tuple(a for a in given if isinstance(a, IPv6Address)),
            ipv6_link_local=(),
        )


def _message(
    vhid: int, addresses: VirtualHostAddresses, counter: int, *, with_link_local: bool
) -> bytes:
    if not 0 <= vhid <= 255:
        raise LocalProtocolError(f"vhid must fit in one byte, got {vhid}")
    if not 0 <= counter < 1 << 64:
        raise LocalProtocolError(f"counter must fit in 64 bits, got {counter}")
    v6 = addresses.ipv6
    if with_link_local:
        v6 = tuple(sorted(v6 + addresses.ipv6_link_local))
    return b"".join(
        [
            bytes([CARP_VERSION, CARP_TYPE_ADVERTISEMENT, vhid]),
            *(a.packed for a in addresses.ipv4),
            *(a.packed for a in v6),
            counter.to_bytes(8, "big"),
        ]
    )


def compute_digest(
    key: bytes,
    vhid: int,
    addresses: VirtualHostAddresses,
    counter: int,
    *,
    with_link_local: bool = False,
) -> bytes:
    """The digest to send: link-local IPv6 addresses excluded unless asked."""
    msg = _message(vhid, addresses, counter, with_link_local=with_link_local)
    return hmac.new(key, msg, hashlib.sha1).digest()


def verify_digest(
    key: bytes, vhid: int, addresses: VirtualHostAddresses, counter: int, digest: bytes
) -> bool:
    """Accept what OpenBSD accepts: the digest without link-locals, or with them."""
    if len(digest) != DIGEST_LEN:
        return False
    if hmac.compare_digest(compute_digest(key, vhid, addresses, counter), digest):
        return True
    return bool(addresses.ipv6_link_local) and hmac.compare_digest(
        compute_digest(key, vhid, addresses, counter, with_link_local=True), digest
    )
