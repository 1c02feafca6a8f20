"""sim/ keeps its layers apart (docs/design.md, "Layers of sim/"), as test_purity keeps models/ pure.

The import graph is read from the source (every import, also those inside functions, which load later
but load all the same; ``if TYPE_CHECKING:`` blocks excepted), so a lazy import cannot hide a dependency:
- the scenario loader imports no runtime (SimPy) and no real-Kafka code (driver, proxy);
- the real-Kafka backend (sim/_realkafka, except conform.py, which compares the two backends) imports
  nothing that runs the simulation: it shares the backend-neutral modules (the loader, the interpreter,
  eosim._judge, eosim._observation, eosim._topology, the checkers) with the simulator;
- the checkers import no runtime and no real-Kafka code;
- the conformance command does not import the CLI (the CLI dispatches to it: one direction only).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"eosim": ROOT / "sim", "eosim.models": ROOT / "models", "eosim.experiments": ROOT / "experiments"}


def _modules() -> dict[str, Path]:
    found = {}
    for package, directory in PACKAGES.items():
        for path in directory.rglob("*.py"):
            rel = path.relative_to(directory).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if package == "eosim" and parts and parts[0] in ("models", "experiments"):
                continue
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str) -> set[str]:
    """The modules ``name`` imports: eosim modules by full name (a parent package's __init__ too, which
    importing its child runs), anything else by its top-level name."""
    tree = ast.parse(MODULES[name].read_text())
    package = name if MODULES[name].name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if _type_checking_only(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1], *filter(None, [base])])
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES]
        for target in targets:
            if target.split(".")[0] != "eosim":
                found.add(target.split(".")[0])
                continue
            parts = target.split(".")
            # the module itself, and every parent package whose __init__ it runs (eosim's own is lazy: PEP 562)
            found |= {".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in MODULES}
    return found - {name}


def closure(name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        if module in MODULES:
            todo.extend(_imports(module))
    return seen - {name}


RUNTIME = {"simpy"}  # what runs the simulation: SimPy, and so every module that reaches it
REALKAFKA = {m for m in MODULES if m.startswith("eosim._realkafka")}
BACKEND = sorted(m for m in REALKAFKA if m != "eosim._realkafka.conform")
CHECKERS = sorted(m for m in MODULES if m.startswith("eosim._checkers"))


def _runtime_in(modules: set[str]) -> list[str]:
    """The modules of ``modules`` that import SimPy themselves: the first runtime layer reached."""
    return sorted(m for m in modules if m in MODULES and _imports(m) & RUNTIME) + sorted(modules & RUNTIME)


def test_the_graph_sees_the_runtime() -> None:
    """The checks below would pass vacuously if the scan missed imports: the runner does reach SimPy,
    through the broker and the network, and the CLI reaches the conformance command."""
    assert {"simpy", "eosim._broker", "eosim._net", "eosim._world"} <= closure("eosim._runner")
    assert "eosim._realkafka.conform" in closure("eosim._cli")
    assert "eosim._realkafka.driver" in closure("eosim._realkafka.conform")


def test_the_loader_imports_no_runtime_and_no_proxy() -> None:
    reached = closure("eosim._scenario")
    assert not _runtime_in(reached), f"eosim._scenario reaches the runtime through {_runtime_in(reached)}"
    assert not reached & REALKAFKA, f"eosim._scenario imports {sorted(reached & REALKAFKA)}"


@pytest.mark.parametrize("module", BACKEND)
def test_the_real_kafka_backend_imports_no_simulator(module: str) -> None:
    reached = closure(module)
    assert not _runtime_in(reached), f"{module} reaches the simulator through {_runtime_in(reached)}"


@pytest.mark.parametrize("module", CHECKERS)
def test_checkers_import_no_runtime(module: str) -> None:
    reached = closure(module)
    assert not _runtime_in(reached), f"{module} reaches the runtime through {_runtime_in(reached)}"
    assert not reached & REALKAFKA, f"{module} imports {sorted(reached & REALKAFKA)}"


def test_conform_does_not_import_the_cli() -> None:
    assert "eosim._cli" not in closure("eosim._realkafka.conform")


def test_importing_the_loader_and_the_driver_loads_no_simpy() -> None:
    """The same at run time, the package's lazy __init__ included."""
    code = ("import sys, eosim._scenario, eosim._judge, eosim._checkers, eosim._realkafka.proxy, "
            "eosim._realkafka.broker, eosim._realkafka.cluster; "
            "bad = sorted(m for m in sys.modules if m in ('simpy', 'eosim._world', 'eosim._net', 'eosim._broker')); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
