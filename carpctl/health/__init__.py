"""Health checks: ``[[check]]`` specs, the probes of each kind, and the runner.

* ``spec``: the ``[[check]]`` tables parsed into ``CheckSpec`` (``parse_checks``),
  with stock definitions from ``checks/`` taken in by ``use = "name"``.
* ``kinds``: one blocking probe per kind (http, tcp, process, pfsync,
  command, file, link), each returning a ``CheckResult``.
* ``runner``: ``CheckRunner`` runs every check on its own interval under a
  hard timeout, off the event loop, and reports rise/fall transitions
  (``carpctl.core.checkstate``).
"""
