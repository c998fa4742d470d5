"""Errors that say whose fault they are (after h11).

``RemoteProtocolError``: bytes from the network (or a capture) are not an
acceptable CARP advertisement. ``reason`` is a stable machine-readable
``DropReason`` that callers count; the message says what was wrong.

``LocalProtocolError``: our own caller asked for something the protocol
cannot express (a vhid of 300, advskew above 255 ...).
"""

from __future__ import annotations

from enum import StrEnum


class DropReason(StrEnum):
    """Why a received packet was not accepted.

    Named after the BSD kernels' ``struct carpstats`` counters where one
    exists (``carps_badlen`` -> ``badlen``), so numbers can be compared with
    ``netstat -s -p carp`` on a BSD peer.
    """

    BADIP = "badip"  # the enclosing IPv4/IPv6 header is malformed
    BADLEN = "badlen"  # fewer than 36 bytes of CARP
    BADSUM = "badsum"  # CARP checksum does not verify
    BADVER = "badver"  # version nibble is not 2 (VRRPv3 lands here)
    BADTYPE = "badtype"  # type nibble is not 1 (advertisement)
    NOTCARP = "notcarp"  # 0x21 but authlen != 7: a VRRPv2 packet on the shared group
    BADVHID = "badvhid"  # no local virtual host with this vhid
    BADTTL = "badttl"  # TTL / hop limit is not 255
    BADAUTH = "badauth"  # HMAC-SHA1 does not verify
    LOOP = "loop"  # our own advertisement came back
    DISABLED = "disabled"  # carp.allow = false


class ProtocolError(Exception):
    """Base of every error raised by the core."""


class RemoteProtocolError(ProtocolError):
    """Input from the network is malformed or not acceptable."""

    def __init__(self, reason: DropReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LocalProtocolError(ProtocolError):
    """The caller asked for something the protocol cannot express."""
