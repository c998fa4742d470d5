"""The sans-I/O core: codec, HMAC, timing and the per-vhid state machine.

Nothing in this package opens a socket, reads a clock or imports asyncio:
time comes in as an argument and results go out as values.
"""
