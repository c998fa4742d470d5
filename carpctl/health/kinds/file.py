"""file: passes while a path exists (``exists = true``) or while it does not (``false``).

``exists = false`` makes a maintenance flag: ``touch /etc/carpctl/down``
demotes the node until the file is removed. The path is followed through
symbolic links (a dangling link does not exist). A path that cannot be
examined (permission denied, an I/O error) fails either way.
"""

from __future__ import annotations

import os

from carpctl.health.params import FileParams
from carpctl.health.result import CheckResult


def probe(params: FileParams) -> CheckResult:
    try:
        os.stat(params.path)
        exists = True
    except (FileNotFoundError, NotADirectoryError):
        exists = False
    except OSError as error:
        return CheckResult.failure(f"cannot examine {params.path}: {error.strerror or error}")
    if exists == params.exists:
        return CheckResult.ok(f"{params.path} {'exists' if exists else 'does not exist'}")
    if exists:
        return CheckResult.failure(f"{params.path} exists (the check passes while it does not)")
    return CheckResult.failure(f"{params.path} does not exist")
