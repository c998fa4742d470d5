"""The carpctl.toml of a lab node (design section 4), checked by the real loader."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from carpctl.daemon import config as config_module
from carpctl.lab.netns import LabError, check_address, check_interface


@dataclass(frozen=True)
class NodeConfig:
    vhid: int
    interface: str
    advbase: int
    advskew: int
    preempt: bool
    password_file: Path
    addresses: tuple[str, ...]
    state_dir: Path
    control_socket: Path

    def render(self) -> str:
        for address in self.addresses:
            check_address(address)  # the engine adds these: lab ranges only
        check_interface(self.interface)

        def q(value: object) -> str:
            return json.dumps(str(value))  # a TOML basic string is a JSON string

        return "\n".join(
            [
                "# Written by carpctl lab.",
                "[carpctl]",
                'backend = "embedded"',
                f"control_socket = {q(self.control_socket)}",
                f"state_dir = {q(self.state_dir)}",
                'log_format = "json"',
                "",
                "[carp]",
                f"preempt = {'true' if self.preempt else 'false'}",
                "log = 2",
                "",
                "[[vhid]]",
                f"vhid = {self.vhid}",
                f"interface = {q(self.interface)}",
                f"advbase = {self.advbase}",
                f"advskew = {self.advskew}",
                f"password_file = {q(self.password_file)}",
                f"addresses = [{', '.join(q(a) for a in self.addresses)}]",
                "",
            ]
        )

    def write(self, path: Path) -> None:
        """Write the config and load it back with carpctl's own loader."""
        path.write_text(self.render())
        try:
            config_module.load(path)
        except config_module.ConfigError as error:
            raise LabError(f"the lab wrote a config carpctl refuses: {error}") from None
