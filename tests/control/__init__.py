"""Tests of the control socket; ``control.fakedaemon`` is shared with tests/cli."""
