"""The control socket: the protocol shared by daemon and CLI, the server, the client.

* ``protocol`` — request/reply lines, argument validation, ``ControlError``.
* ``results`` — the shapes of the results (TypedDicts) and their checkers.
* ``server`` — ``ControlServer(path, handlers)``, run by the daemon.
* ``client`` — ``request(path, command, args, timeout)``, used by the CLI.
"""
