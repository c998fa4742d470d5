"""``python -m carpctl`` is the ``carpctl`` command."""

from carpctl.cli.main import main

raise SystemExit(main())
