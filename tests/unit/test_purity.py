"""models/ stays pure: no SimPy, no runtime, no clock, no global randomness (docs/design.md)."""

import ast
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[2] / "models"
FORBIDDEN = {"simpy", "random", "time", "datetime", "threading"}


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.py")), ids=lambda p: p.name)
def test_models_import_nothing_impure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    # eosim.models may import itself; any other eosim module is the runtime.
    bad = {m for m in imported if m.split(".")[0] in FORBIDDEN
           or (m.split(".")[0] == "eosim" and not m.startswith("eosim.models"))}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_the_scan_sees_the_models() -> None:
    assert len(list(MODELS.glob("*.py"))) >= 5


def test_importing_the_models_loads_no_runtime() -> None:
    """eosim.models lives inside the eosim package: its parent's __init__ must not pull in SimPy."""
    import subprocess
    import sys

    code = ("import sys, eosim.models.txn_coordinator, eosim.models.log, eosim.models.fetch, "
            "eosim.models.partition, eosim.models.replication_control, eosim.models.group_coordinator; "
            "bad = sorted(m for m in sys.modules if m == 'simpy' or (m.startswith('eosim.') "
            "and not m.startswith('eosim.models'))); print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
