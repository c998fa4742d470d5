"""The role reactor (design section 7): services follow mastership.

``spec`` parses ``[[service]]``; ``managers`` starts, stops and queries
each kind (systemd, FreeBSD service, OpenBSD rcctl, hook commands, a
supervised ``run`` process); ``executor`` is the asyncio driver around the
sans-I/O planner ``carpctl.core.reactor``.
"""
