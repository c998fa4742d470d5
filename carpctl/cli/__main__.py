"""``python -m carpctl.cli``: the same as the ``carpctl`` console script."""

import sys

from carpctl.cli.main import main

sys.exit(main())
