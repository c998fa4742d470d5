"""A hook for command services: logs what it was given, behaves as files in HOOK_DIR say.

``hook.py ACTION [ARGS...]``: appends {"action", "args", "env", "pid", "at"} to
``$HOOK_DIR/log.jsonl``. Then, when ``$HOOK_DIR/ACTION.<what>`` exists:
``sleep`` (seconds in it), ``hang`` (spawns a child that sleeps, writes its PID to
``ACTION.child``, sleeps itself), ``daemon`` (leaves a child holding stdout, its PID
in ``ACTION.child``), ``fail`` (exit 1). ``start`` creates ``running``, ``stop``
removes it, ``status`` exits 0 while it exists, 3 otherwise.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]

state = Path(os.environ["HOOK_DIR"])
action = sys.argv[1]
record = {
    "action": action,
    "args": sys.argv[2:],
    "env": {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("CARPCTL_", "HOOK_X", "NOTIFY_", "WATCHDOG_"))
    },
    "pid": os.getpid(),
    "at": time.time(),
}
with open(state / "log.jsonl", "a") as log:
    log.write(json.dumps(record) + "\n")
if (state / f"{action}.sleep").exists():
    time.sleep(float((state / f"{action}.sleep").read_text()))
if (state / f"{action}.hang").exists():
    child = subprocess.Popen(SLEEPER)
    (state / f"{action}.child").write_text(str(child.pid))
    time.sleep(60)
if (state / f"{action}.daemon").exists():
    child = subprocess.Popen(SLEEPER, stdout=sys.stdout, stderr=sys.stderr)
    (state / f"{action}.child").write_text(str(child.pid))
if (state / f"{action}.fail").exists():
    print(f"{action} failed on purpose", flush=True)
    sys.exit(1)
if action == "start":
    (state / "running").touch()
    print("started", flush=True)
elif action == "stop":
    (state / "running").unlink(missing_ok=True)
elif action == "status":
    sys.exit(0 if (state / "running").exists() else 3)
