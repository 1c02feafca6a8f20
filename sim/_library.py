"""eosim._library
==============

The built-in scenario library and how a command-line argument names a scenario (a file, or a built-in
name), for the CLI (sim/_cli.py) and the conformance command (sim/_realkafka/conform.py) alike.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


class BadInput(Exception):
    """Input the user can fix: printed as one line, exit 254."""


def scenario_dir() -> Path:
    """The built-in library: $EOSIM_SCENARIOS, else the scenarios shipped as package data."""
    env = os.environ.get("EOSIM_SCENARIOS")
    return Path(env) if env else Path(str(resources.files("eosim.experiments") / "scenarios"))


def resolve_scenario(arg: Path) -> Path:
    if arg.is_file():
        return arg
    builtin = scenario_dir() / f"{arg.name}.toml"
    if str(arg) and builtin.is_file():
        return builtin
    raise BadInput(f"{arg}: no such scenario file or built-in scenario (see `eosim scenarios`)")
