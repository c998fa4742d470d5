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

from carpctl.core.wire import CARP_TYPE_ADVERTISEMENT, CARP_VERSION, DIGEST_LEN

KEY_MAX_LEN = 19


def carp_key(passphrase: bytes | str) -> bytes:
    """The key the kernels and ucarp derive from a passphrase (first 19 bytes)."""
    raw = passphrase.encode() if isinstance(passphrase, str) else passphrase
    return raw[:KEY_MAX_LEN]


@dataclass(frozen=True, slots=True)
class VirtualHostAddresses:
    """The address set a vhid hashes, in hashing order."""

    ipv4: tuple[IPv4Address, ...]
    ipv6: tuple[IPv6Address, ...]  # global/ULA addresses only
    ipv6_link_local: tuple[IPv6Address, ...]

    @classmethod
    def of(cls, addresses: Iterable[IPv4Address | IPv6Address]) -> VirtualHostAddresses:
        given = tuple(addresses)  # may be a one-shot iterator
        v4 = {a for a in given if isinstance(a, IPv4Address)}
        v6 = {a for a in given if isinstance(a, IPv6Address)}
        return cls(
            ipv4=tuple(sorted(v4)),
            ipv6=tuple(sorted(a for a in v6 if not a.is_link_local)),
            ipv6_link_local=tuple(sorted(a for a in v6 if a.is_link_local)),
        )


def _message(
    vhid: int, addresses: VirtualHostAddresses, counter: int, *, with_link_local: bool
) -> bytes:
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
