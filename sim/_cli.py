"""eosim._cli
=======

The ``eosim`` command. Exit codes follow Jepsen: 0 valid, 1 anomalies found, 2 unknown, 254 bad input,
255 internal error. Progress goes to stderr, and only on a terminal; results go to stdout.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback
from importlib import resources
from pathlib import Path
from typing import Optional

import typer

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 254, 255

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Deterministic simulator of Kafka's exactly-once machinery.")


class BadInput(Exception):
    """Input the user can fix: printed as one line, exit 254."""


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        print(message, file=sys.stderr)


def _write_run_dir(out: Path, files: dict[str, str]) -> None:
    """Write every file into a temporary sibling, then swap it in: never a half-written run dir."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)


def _summary(outcome) -> str:
    result = outcome.result
    lines = [f"{outcome.scenario.name} (seed {outcome.seed}): "
             + {True: "valid", False: "INVALID", "unknown": "unknown"}[result.valid]]
    for anomaly in result.anomalies:
        lines.append(f"  ✗ {anomaly.name}: {anomaly.description}")
    for anomaly in result.allowed:
        lines.append(f"  · {anomaly.name} (allowed in Kafka): {anomaly.description}")
    for part in outcome.observation.partitions:
        lines.append(f"  {part.topic}-{part.partition}: HW={part.high_watermark} LSO={part.last_stable_offset}"
                     f" read_committed={[v for _o, _k, v in part.read_committed]}")
    return "\n".join(lines)


def _guard(fn):
    """Map errors onto the documented exit codes, never a traceback for bad input."""
    from eosim._scenario import ScenarioError

    try:
        return fn()
    except (typer.Exit, BrokenPipeError):
        raise
    except (ScenarioError, BadInput) as err:
        print(f"eosim: {err}", file=sys.stderr)
        raise typer.Exit(EXIT_BAD_INPUT)
    except Exception:  # an internal error is a bug: show it, exit 255
        traceback.print_exc()
        raise typer.Exit(EXIT_INTERNAL)


@app.command()
def run(scenario: Path = typer.Argument(..., help="Scenario file (TOML) or built-in scenario name"),
        seed: Optional[int] = typer.Option(None, help="Seed (default: the scenario's)"),
        out: Optional[Path] = typer.Option(None, help="Run directory (default runs/NAME/seed-N)"),
        as_json: bool = typer.Option(False, "--json", help="Print results.json instead of a summary")) -> None:
    """Run a scenario, write its run directory, print the verdict."""

    def go():
        from eosim._runner import run_file, run_dir_files

        path = resolve_scenario(scenario)
        _progress(f"running {path} ...")
        outcome = run_file(path, seed=seed)
        target = out or Path("runs") / outcome.scenario.name / f"seed-{outcome.seed}"
        _write_run_dir(target, run_dir_files(outcome, path.read_text(encoding="utf-8")))
        if as_json:
            print(json.dumps(outcome.results_json(), indent=2, sort_keys=True))
        else:
            print(_summary(outcome))
            print(f"  run directory: {target}")
        raise typer.Exit(outcome.exit_code)

    _guard(go)


@app.command()
def check(trace: Path = typer.Argument(..., help="trace.jsonl of a run")) -> None:
    """Check an existing trace (and the history.json beside it, if any)."""

    def go():
        from eosim._runner import check_files

        if not trace.is_file():
            raise BadInput(f"{trace}: no such file")
        result = check_files(trace)
        print(json.dumps(result.to_json(), indent=2, sort_keys=True))
        from eosim._checkers import exit_code

        raise typer.Exit(exit_code(result))

    _guard(go)


@app.command()
def replay(run_dir: Path = typer.Argument(..., help="A run directory written by `eosim run`")) -> None:
    """Run again from the run directory's scenario and seed; verify the trace is byte-identical."""

    def go():
        from eosim._runner import replay_dir

        if not (run_dir / "trace.jsonl").is_file():
            raise BadInput(f"{run_dir}: not a run directory (no trace.jsonl)")
        same, detail = replay_dir(run_dir)
        print(detail)
        raise typer.Exit(EXIT_VALID if same else EXIT_INVALID)

    _guard(go)


@app.command()
def diagram(run_dir: Path = typer.Argument(..., help="A run directory written by `eosim run`")) -> None:
    """Write diagram.mmd (a Mermaid sequenceDiagram) for a run directory and print it."""

    def go():
        from eosim._diagram import mermaid
        from eosim._trace import load_jsonl

        trace = run_dir / "trace.jsonl"
        if not trace.is_file():
            raise BadInput(f"{run_dir}: not a run directory (no trace.jsonl)")
        text = mermaid(load_jsonl(trace.read_text(encoding="utf-8")))
        (run_dir / "diagram.mmd").write_text(text, encoding="utf-8")
        print(text, end="")

    _guard(go)


@app.command()
def scenarios() -> None:
    """List the built-in scenarios, one line each."""

    def go():
        from eosim._scenario import load_scenario

        for path in sorted(scenario_dir().glob("*.toml")):
            sc = load_scenario(path)
            print(f"{sc.name:40} {sc.description}")

    _guard(go)


@app.command()
def conform(scenarios: Optional[list[Path]] = typer.Argument(None, help="Scenarios (default: the whole library)"),
            bootstrap: Optional[str] = typer.Option(None, help="A running broker, HOST:PORT"),
            start_kafka: bool = typer.Option(False, "--start-kafka", help="Start a broker from the Maven jars"),
            kafka_version: str = typer.Option("4.1.2", help="Kafka version for --start-kafka"),
            transaction_version: int = typer.Option(2, help="transaction.version the broker is formatted with")) -> None:
    """Replay scenarios on the simulator and on a real Kafka broker; print whether they agree."""

    def go():
        from eosim._realkafka.conform import conform_command

        raise typer.Exit(conform_command(scenarios or [], bootstrap, start_kafka, kafka_version, transaction_version))

    _guard(go)


def scenario_dir() -> Path:
    """The built-in library: $EOSIM_SCENARIOS, else the scenarios shipped as package data."""
    env = os.environ.get("EOSIM_SCENARIOS")
    return Path(env) if env else Path(str(resources.files("eosim.experiments") / "scenarios"))


def resolve_scenario(arg: Path) -> Path:
    if arg.is_file():
        return arg
    builtin = scenario_dir() / f"{arg.name}.toml"
    if builtin.is_file():
        return builtin
    raise BadInput(f"{arg}: no such scenario file or built-in scenario (see `eosim scenarios`)")


def main() -> None:
    try:
        app()
    except BrokenPipeError:  # `eosim ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        os._exit(0)
