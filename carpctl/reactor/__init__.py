"""The role reactor (design section 7): services follow mastership.

``spec`` parses ``[[service]]``; ``managers`` (with ``process`` and
``supervised``) starts, stops and queries each kind: systemd, FreeBSD
service, OpenBSD rcctl, hook commands, a supervised ``run`` process;
``executor`` is the asyncio driver (with ``querying``, ``reloading`` and
``status``) around the sans-I/O planner ``carpctl.core.reactor``.
"""
