"""The Internet checksum (RFC 1071) used by CARP and the IPv4 header."""

from __future__ import annotations


def internet_checksum(data: bytes) -> int:
    """One's-complement of the one's-complement sum of 16-bit words.

    Over a buffer whose checksum field is already filled in, the result is 0
    exactly when that checksum is right. An odd trailing byte is summed as if
    followed by a zero byte; ``data`` itself is never modified.
    """
    if len(data) % 2:
        # Not ``data += ...``: on a bytearray that would extend the caller's buffer.
        data = bytes(data) + b"\x00"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
