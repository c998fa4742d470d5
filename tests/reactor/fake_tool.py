"""A fake systemctl, FreeBSD service or OpenBSD rcctl (by the name it is called as).

State: ``$FAKE_STATE/<name>`` exists while the service runs; every call is
appended to ``$FAKE_STATE/calls.jsonl``. ``$FAKE_STATE/<name>.fail`` makes a
start fail, ``<name>.hang`` makes it hang, ``nobus`` makes every systemctl
call fail like systemctl without a bus (exit 1). Exit codes as documented:
systemctl is-active 0 active / 3 inactive; service onestatus 0 / 1 (and
onestart of a running, onestop of a stopped service exit 1); rcctl check 0 / 1.
"""

import json
import os
import sys
import time
from pathlib import Path

tool = Path(sys.argv[0]).name
args = sys.argv[1:]
state = Path(os.environ["FAKE_STATE"])
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps([tool, *args]) + "\n")


def start(name: str) -> bool:
    if (state / f"{name}.hang").exists():
        time.sleep(60)
    if (state / f"{name}.fail").exists():
        return False
    (state / name).touch()
    return True


def running(name: str) -> bool:
    return (state / name).exists()


if tool == "systemctl":
    verb, unit = args
    if (state / "nobus").exists():
        print("Failed to connect to bus: No such file or directory", file=sys.stderr)
        sys.exit(1)
    if verb == "start":
        if not start(unit):
            print(f"Job for {unit} failed because the control process exited with error code.")
            sys.exit(1)
    elif verb == "stop":
        (state / unit).unlink(missing_ok=True)
    elif verb == "is-active":
        print("active" if running(unit) else "inactive")
        sys.exit(0 if running(unit) else 3)
    else:
        sys.exit(1)
elif tool == "service":
    name, verb = args
    if verb == "onestart":
        if running(name):
            print(f"{name} already running? (pid=4242).")
            sys.exit(1)
        if not start(name):
            print(f"/usr/local/etc/rc.d/{name}: WARNING: failed to start {name}")
            sys.exit(1)
        print(f"Starting {name}.")
    elif verb == "onestop":
        if not running(name):
            print(f"{name} not running? (check /var/run/{name}.pid).")
            sys.exit(1)
        (state / name).unlink()
        print(f"Stopping {name}.")
    elif verb == "onestatus":
        print(f"{name} is running as pid 4242." if running(name) else f"{name} is not running.")
        sys.exit(0 if running(name) else 1)
    else:
        sys.exit(2)
elif tool == "rcctl":
    if args[0] == "-f":
        verb, name = args[1:]
        if verb == "start" and not start(name):
            print(f"{name}(failed)")
            sys.exit(1)
        if verb == "stop":
            (state / name).unlink(missing_ok=True)
        print(f"{name}(ok)")
    elif args[0] == "check":
        name = args[1]
        print(f"{name}({'ok' if running(name) else 'failed'})")
        sys.exit(0 if running(name) else 1)
    else:
        sys.exit(2)
