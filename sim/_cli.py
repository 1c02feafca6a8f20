"""eosim._cli
==========

The ``eosim`` command (docs/cli.md). Exit codes follow Jepsen: 0 valid (or broken as the scenario
expects), 1 invalid (not as expected), 2 unknown, 254 bad input (usage errors included), 255 internal
error. Results go to stdout (``--json``: one JSON document), errors to stderr as one line, progress to
stderr and only on a terminal.

Each command is a small function: parse, then call into the runtime inside ``_guard`` (which maps
errors onto exit codes) and print through ``_emit``. Heavy modules are imported inside the commands,
so that ``eosim --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from typer.core import TyperGroup

from eosim._library import BadInput, resolve_scenario, scenario_dir
from eosim.models.bugs import PINNED_RELEASE

EXIT_VALID, EXIT_INVALID, EXIT_UNKNOWN, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 254, 255
RUNS = Path("runs")  # the default store of run directories, relative to the working directory
# click's error base class (UsageError, BadParameter, NoSuchOption, ...): vendored by recent typer,
# a dependency of older ones; typer.BadParameter derives from it in both.
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class _Eosim(TyperGroup):
    """Usage errors exit 254, not click's 2: 2 is Jepsen's "unknown"."""

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            code = super().main(args, prog_name or "eosim", complete_var, standalone_mode=False, **extra)
        except _CLICK_ERROR as err:
            err.show()  # "Usage: ...", "Try 'eosim run -h' for help.", "Error: ..."
            code = EXIT_BAD_INPUT
        except typer.Abort:
            code = 130
        code = code if isinstance(code, int) else EXIT_VALID
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(cls=_Eosim, add_completion=False, rich_markup_mode=None, no_args_is_help=True, pretty_exceptions_enable=False,
                  context_settings={"help_option_names": ["-h", "--help"]},
                  help="Deterministic simulator of Kafka's exactly-once machinery.")

JSON = typer.Option(False, "--json", help="Print one JSON document on stdout instead of text")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"eosim {version('eosim')}")
        except PackageNotFoundError:  # running from a source tree that is not installed
            print("eosim (not installed)")
        raise typer.Exit(EXIT_VALID)


@app.callback()
def _main(_version_flag: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                             help="Print eosim's version and exit")) -> None:
    """Deterministic simulator of Kafka's exactly-once machinery."""


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        print(message, file=sys.stderr)


def _emit(as_json: bool, data: Any, text: str) -> None:
    """Print a command's result: the JSON document, or the text for a person."""
    if as_json:
        print(json.dumps(data, indent=2, sort_keys=True))
    elif text:
        print(text)


def _warn(warning: Optional[str]) -> None:
    if warning:
        print(f"eosim: warning: {warning}", file=sys.stderr)


def _guard(fn: Callable[[], int]) -> None:
    """Run a command body and exit with its code; bad input is one line on stderr and exit 254, any
    other exception is a bug of eosim's: traceback and exit 255."""
    from eosim._rundir import RunDirError
    from eosim._scenario import ScenarioError

    try:
        code = fn()
    except (typer.Exit, BrokenPipeError, KeyboardInterrupt):
        raise
    except (ScenarioError, BadInput, RunDirError) as err:
        print(f"eosim: {err}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except OSError as err:  # the file system refused (permissions, disk full): the user's to fix
        where = f"{err.filename}: " if err.filename else ""
        print(f"eosim: {where}{err.strerror or err}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except Exception:  # an internal error is a bug: show it, exit 255
        traceback.print_exc()
        code = EXIT_INTERNAL
    raise typer.Exit(code)


# --- run -------------------------------------------------------------------------------------------


@app.command()
def run(scenario: Path = typer.Argument(..., help="Scenario file (TOML) or built-in scenario name"),
        seed: Optional[int] = typer.Option(None, min=0, help="Seed, >= 0 (default: the scenario's)"),
        out: Optional[str] = typer.Option(None, help="Run directory (default runs/NAME/<timestamp>-seed-N); "
                                                      "replaces only an earlier eosim run directory"),
        kafka_version: Optional[str] = typer.Option(
            None, help="Run as this Kafka release (a 4.x release on Maven Central): its bugs are on. Default: the "
            "scenario's [cluster] \"eosim.kafka.version\", else the pinned release"),
        as_json: bool = JSON) -> None:
    """Run a scenario, write its run directory, print the verdict."""

    def go() -> int:
        from eosim import _rundir
        from eosim._hints import hints
        from eosim._runner import run_dir_files, run_scenario
        from eosim._scenario import load_scenario, load_scenario_text

        if out is not None:
            _rundir.check_target(out, replace=True)  # refuse before spending the run
        path = resolve_scenario(scenario)
        text = path.read_text(encoding="utf-8")
        loaded = load_scenario(path)
        if kafka_version is not None:
            text = _with_kafka_version(text, loaded.cluster, kafka_version, path)
            wanted, loaded = {**loaded.cluster, "eosim.kafka.version": kafka_version}, \
                load_scenario_text(text, path.stem, file=str(path))
            if dict(loaded.cluster) != wanted:  # the line went somewhere else than the [cluster] table
                raise BadInput(f'{path}: cannot add "eosim.kafka.version" to its [cluster] table; set it in the file')
        _progress(f"running {path} ...")
        outcome = run_scenario(loaded, seed)
        found = hints(outcome)
        results = {**outcome.results_json(), "hints": [h.to_json() for h in found]}
        files = run_dir_files(outcome, text, results)
        name = outcome.scenario.name
        written, warning = _rundir.store(files, out=out, default=_rundir.default_path(RUNS, name, outcome.seed),
                                         scenario=name, seed=outcome.seed)
        _warn(warning)
        _emit(as_json, {**results, "run-directory": str(written)},
              f"{summary(outcome, found)}\n  run directory: {written}")
        return outcome.exit_code

    _guard(go)


def _with_kafka_version(text: str, cluster: dict[str, Any], version: str, path: Path) -> str:
    """The scenario's text with ``[cluster] "eosim.kafka.version" = version``, so the run directory's
    scenario.toml replays the run as it was made."""
    from eosim.models.bugs import validate_release
    from eosim.models.config import KAFKA_VERSION_KEY

    try:
        validate_release(version)
    except ValueError as exc:
        raise BadInput(f"--kafka-version: {exc}") from None
    pinned = cluster.get(KAFKA_VERSION_KEY)
    if pinned == version:
        return text
    if pinned is not None:
        raise BadInput(f'{path}: cluster."{KAFKA_VERSION_KEY}" pins Kafka {pinned}; --kafka-version {version} '
                       "contradicts it (edit the file, or leave the option out)")
    line = f'"{KAFKA_VERSION_KEY}" = "{version}"\n'
    lines = text.splitlines(keepends=True)
    headers = [i for i, raw in enumerate(lines) if raw.strip() == "[cluster]"]
    if headers:
        lines.insert(headers[0] + 1, line)
        return "".join(lines)
    if cluster:  # written as an inline table or dotted keys: not a place a line can go
        raise BadInput(f'{path}: --kafka-version needs a "[cluster]" table header to add "{KAFKA_VERSION_KEY}" '
                       "under (or set it in the file)")
    return text + ("" if text.endswith("\n") else "\n") + "\n[cluster]\n" + line


def summary(outcome: Any, hints: list[Any] = ()) -> str:
    """The verdict for a person: the headline, then the guarantees and the scenario's expectation apart."""
    verdict = outcome.verdict
    checks = verdict.checks
    status, guarantees, expectation = verdict.words()
    lines = [f"{outcome.scenario.name} (seed {outcome.seed}): {status}", f"  guarantees: {guarantees}",
             f"  as this scenario expects: {expectation}"]
    lines += [f"    - {claim}" for claim in verdict.claims()]
    lines += _bugs_line(outcome.scenario.broker_config, bool(checks.anomalies))
    for anomaly in checks.anomalies:
        lines.append(f"  ✗ {anomaly.name}: {anomaly.description}")
    for anomaly in checks.allowed:
        lines.append(f"  · {anomaly.name} (allowed in Kafka): {anomaly.description}")
    for part in outcome.observation.partitions:
        lines.append(f"  {part.topic}-{part.partition}: HW={part.high_watermark} LSO={part.last_stable_offset}"
                     f" read_committed={[v for _o, _k, v in part.read_committed]}")
    lines += [f"  hint ({hint.kind}): {hint.text}" for hint in hints]
    return "\n".join(lines)


def _bugs_line(config: Any, anomalies: bool) -> list[str]:
    """Which of Kafka's own bugs the broker ran with, so an anomaly can be read as the release's bug: said when
    there is an anomaly, a switched-on bug or a release other than the pinned one."""
    from eosim.models.bugs import HISTORICAL_BUGS, PINNED_RELEASE, bugs_of

    release = config.eosim_kafka_version
    if not (anomalies or config.eosim_reintroduce or release != PINNED_RELEASE):
        return []
    of_release = sorted(bugs_of(release))
    named = lambda ids: ", ".join(f"{b} ({HISTORICAL_BUGS[b].title})" for b in ids)  # noqa: E731
    line = f"  Kafka {release} as modelled: " + (f"its bugs {named(of_release)}" if of_release else "no known bug")
    switched = sorted(set(config.eosim_reintroduce) - set(of_release))
    return [line + (f"; switched on: {named(switched)}" if switched else "")]


@app.command()
def explain(scenario: Path = typer.Argument(..., help="Scenario file (TOML) or built-in scenario name"),
            seed: Optional[int] = typer.Option(None, min=0, help="Seed, >= 0 (default: the scenario's)"),
            as_json: bool = JSON) -> None:
    """Tell a scenario's story: its header, then a run step by step.

    Prints the scenario's teaching header, runs it and narrates what happened from the trace. Writes
    no run directory (use `eosim run` to keep one); exits as `eosim run` would."""

    def go() -> int:
        from eosim._explain import narrate
        from eosim._hints import hints
        from eosim._runner import run_file

        path = resolve_scenario(scenario)
        outcome = run_file(path, seed=seed)
        found, story = hints(outcome), narrate(outcome.trace)
        header = outcome.scenario.header
        data = {"scenario": outcome.scenario.name, "seed": outcome.seed, "header": header,
                "narration": [line.to_json() for line in story],
                "results": {**outcome.results_json(), "hints": [h.to_json() for h in found]}}
        text = "\n".join([header, "", f"What happened (seed {outcome.seed}; t is simulated time):",
                          *map(str, story), "", summary(outcome, found)])
        _emit(as_json, data, text.lstrip("\n"))
        return outcome.exit_code

    _guard(go)


# --- reading run directories back --------------------------------------------------------------------


@app.command()
def check(path: Path = typer.Argument(..., help="A run directory, or the trace.jsonl of one"),
          as_json: bool = JSON) -> None:
    """Check a recorded run again with the checkers.

    The trace oracle over trace.jsonl and Jepsen's checker over the history.jsonl beside it. Exit 0
    guarantees held, 1 broken, 2 unknown."""

    def go() -> int:
        from eosim import _rundir
        from eosim._checkers import check_history, check_trace, combine, exit_code

        trace_path = path / "trace.jsonl" if path.is_dir() else path
        trace = _rundir.read_events(trace_path, "trace")
        history_path = trace_path.with_name("history.jsonl")
        history = _rundir.read_events(history_path, "history") if history_path.exists() else None
        try:
            result = check_trace(trace)
            if history is not None:
                result = combine(result, check_history(history))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            raise BadInput(f"{trace_path.parent}: not a run eosim recorded (the checkers failed on it: "
                           f"{type(err).__name__}: {err})") from None
        verdict = {True: "valid", False: "INVALID", "unknown": "unknown"}[result.valid]
        lines = [f"{trace_path}: {verdict}" + ("" if history is not None else " (no history.jsonl: trace only)")]
        lines += [f"  ✗ {a.name}: {a.description}" for a in result.anomalies]
        lines += [f"  · {a.name} (allowed in Kafka): {a.description}" for a in result.allowed]
        _emit(as_json, result.to_json(), "\n".join(lines))
        return exit_code(result)

    _guard(go)


@app.command()
def replay(run_dir: Path = typer.Argument(..., help="A run directory written by `eosim run`"),
           as_json: bool = JSON) -> None:
    """Rerun a run directory; verify the trace is byte-identical.

    Runs the run directory's scenario.toml with its seed again and compares the traces."""

    def go() -> int:
        from eosim import _rundir
        from eosim._runner import replay as replay_run
        from eosim._scenario import load_scenario_text

        recorded = _rundir.read(run_dir)
        scenario = load_scenario_text(recorded.scenario_text, recorded.scenario_name,
                                      file=str(run_dir / "scenario.toml"))
        same, detail = replay_run(scenario, recorded.seed, recorded.trace_text)
        _emit(as_json, {"identical": same, "detail": detail, "scenario": recorded.scenario_name,
                        "seed": recorded.seed}, detail)
        return EXIT_VALID if same else EXIT_INVALID

    _guard(go)


@app.command()
def diagram(run_dir: Path = typer.Argument(..., help="A run directory written by `eosim run`"),
            as_json: bool = JSON) -> None:
    """Redraw a run directory's diagram.mmd and timeline.html.

    Writes diagram.mmd (a Mermaid sequenceDiagram) and timeline.html into the run directory and prints
    the diagram."""

    def go() -> int:
        from eosim import _rundir
        from eosim._diagram import mermaid
        from eosim._timeline import timeline_html

        if not run_dir.is_dir():
            raise BadInput(f"{run_dir}: not a run directory")
        events = _rundir.read_events(run_dir / "trace.jsonl", "trace")
        try:  # the witnesses of results.json's anomalies, when it is there, are banded in red
            results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            results = {}
        results = results if isinstance(results, dict) else {}
        anomalies = results.get("anomalies")
        anomalies = anomalies if isinstance(anomalies, dict) else None
        try:
            text = mermaid(events, anomalies)
            page = timeline_html(events, {**results, "anomalies": anomalies or {}})
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            raise BadInput(f"{run_dir}: not a run eosim recorded (the diagram failed on it: "
                           f"{type(err).__name__}: {err})") from None
        _rundir.add_file(run_dir, "diagram.mmd", text)
        _rundir.add_file(run_dir, "timeline.html", page)
        if as_json:
            _emit(True, {"diagram": str(run_dir / "diagram.mmd"), "mermaid": text,
                         "timeline": str(run_dir / "timeline.html")}, "")
        else:
            print(text, end="")
        return EXIT_VALID

    _guard(go)


@app.command()
def study(name: Optional[str] = typer.Argument(None, help="The study to run (omit it to list the studies)"),
          seeds: Optional[int] = typer.Option(None, help="Seeds 1..N per point (default: the study's)"),
          out: Optional[str] = typer.Option(None, help="Run directory (default runs/studies/NAME/<timestamp>); "
                                                        "replaces only an earlier eosim run directory"),
          workers: Optional[int] = typer.Option(None, help="Worker processes (default: every core)"),
          executor: str = typer.Option("local", help="Where the runs go: local (processes) or dask://HOST:PORT"),
          as_json: bool = JSON) -> None:
    """Run a study over seeds on every core; list the studies.

    Writes runs.csv, summary.csv, summary.md and plot.png into a new directory
    (runs/studies/NAME/<timestamp>, with a latest link) and prints the summary."""

    def go() -> int:
        from eosim import _study

        if name is None:
            listing = [{"name": n, "claim": _study.claim(_study.load(n))} for n in _study.names()]
            _emit(as_json, listing, "\n".join(f"{s['name']:22} {s['claim']}" for s in listing))
            return EXIT_VALID
        if workers is not None and workers < 1:
            raise BadInput(f"--workers must be at least 1, not {workers}")
        from eosim import _executor
        try:
            _executor.check(executor)
        except _executor.ExecutorError as err:
            raise BadInput(str(err)) from None
        try:
            module = _study.load(name)
            total = len(module.cells()) * (module.DEFAULT_SEEDS if seeds is None else max(seeds, 0))
            result = _run_study(module.NAME, total, seeds, out, workers, show=not as_json, executor=executor)
        except _study.StudyError as err:
            raise BadInput(str(err)) from None
        if result.plot_skipped:
            print(f"eosim: {result.plot_skipped}", file=sys.stderr)
        _warn(result.warning)
        files = {key: str(path) for key, path in result.paths.items()}
        _emit(as_json, {"study": result.name, "seeds": result.seeds, "files": files, "summary": result.summary,
                        "run-directory": str(result.directory)},
              f"{result.markdown}\n  run directory: {result.directory}")
        return EXIT_VALID

    _guard(go)


def _run_study(name: str, total: int, seeds: Optional[int], out: Optional[str], workers: Optional[int],
               show: bool, executor: str = "local") -> Any:
    """The study with a progress bar on stderr (only on a terminal)."""
    from rich.console import Console
    from eosim import _study
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, disable=not (show and console.is_terminal)) as bar:
        where = f"{workers or _study.default_workers()} workers" if executor == "local" else executor
        task = bar.add_task(f"{name} ({where})", total=total)
        return _study.run_study(name, seeds, out, workers=workers, progress=lambda n: bar.advance(task, n),
                                executor=executor)


# --- explore ---------------------------------------------------------------------------------------


@app.command()
def explore(scenario: Optional[Path] = typer.Argument(None, help="Search around this scenario's workload "
                                                                  "(default: draw workloads too)"),
            reintroduce: Optional[list[str]] = typer.Option(None, "--reintroduce", help="Historical bug to switch "
                                                            "back on, e.g. KAFKA-6119 (repeatable)"),
            budget: float = typer.Option(60.0, min=0.1, help="Seconds of search per job (shrinking gets as many)"),
            seed: int = typer.Option(0, min=0, help="Hypothesis seed (job j uses seed + j), also the runs' seed"),
            jobs: int = typer.Option(1, min=1, help="Campaigns in parallel processes"),
            executor: str = typer.Option("local", help="Where the campaigns run: local (processes) or "
                                                       "dask://HOST:PORT (a Dask distributed scheduler)"),
            out: Optional[str] = typer.Option(None, help="Where finding-N/ run directories go (default "
                                                         "runs/explore/<timestamp>-seed-N); must be new or empty"),
            as_json: bool = JSON) -> None:
    """Search fault schedules for runs the checkers call INVALID.

    Shrinks each finding and writes it as a run directory."""

    def go() -> int:
        from eosim import _executor, _explore, _rundir
        from eosim._scenario import load_scenario

        bugs = tuple(reintroduce or ())
        base = _explore.base_document(load_scenario(resolve_scenario(scenario))) if scenario is not None else None
        try:
            _explore.check_bugs(bugs, _explore.release_of(base))
        except ValueError as err:
            raise BadInput(f"--reintroduce: {err}") from None
        try:
            _executor.check(executor)
        except _executor.ExecutorError as err:
            raise BadInput(str(err)) from None
        if out is not None:
            _rundir.check_target(out, replace=False)
        show = not as_json and sys.stderr.isatty()

        def progress(runs: int, seconds: float) -> None:
            print(f"\rexploring: {runs} runs, {runs / max(seconds, 1e-9):.1f} runs/s, {seconds:.0f}/{budget:.0f} s",
                  end="", file=sys.stderr, flush=True)

        target = Path(out) if out is not None else _rundir.default_path(RUNS, "explore", seed)
        try:
            if jobs == 1 and executor == "local":
                campaigns = _explore.explore(base=base, reintroduce=bugs, budget=budget, seed=seed,
                                             progress=progress if show else None)
                if show:
                    print(file=sys.stderr)
            else:
                campaigns = _explore_bar(base, bugs, budget, seed, jobs, executor, show)
        except _explore.InvalidBase as err:
            raise BadInput(f"{scenario}: {err}") from None
        except _explore.SimulatorCrash as crash:
            if show:
                print(file=sys.stderr)
            where = _explore.write_crash(target, crash, bugs)
            print(f"eosim explore: the simulator raised {crash} on a drawn scenario (a bug of eosim's, please report "
                  f"it): {where / 'scenario.toml'} reproduces it, {where / 'traceback.txt'} has the traceback",
                  file=sys.stderr)
            return EXIT_INTERNAL
        findings = [c.finding for c in campaigns if c.finding is not None]
        written = _explore.write_findings(target, findings, bugs) if findings else []
        runs = sum(c.runs for c in campaigns)
        lines = [f.line(n) for n, f in enumerate(findings, 1)]
        known: dict[str, int] = {}
        for c in campaigns:
            for name, count in c.known.items():
                known[name] = known.get(name, 0) + count
        lines.extend(f"known: {name}: {count} INVALID run(s) explained by documented behaviour (docs/verdicts.md)"
                     for name, count in sorted(known.items()))
        cut = sum(c.cut for c in campaigns)
        if cut:
            lines.append(f"cut: {cut} run(s) stopped at the per-run limit ({_explore.RUN_EVENTS} simulation events "
                         "or the simulated-time limit): unknown, not findings")
        lines.append(f"{len(findings)} finding(s) in {runs} runs" + (f": {target}" if findings else ""))
        _emit(as_json, {"runs": runs, "cut": cut, "reintroduce": list(bugs), "seed": seed, "jobs": jobs,
                        "known": dict(sorted(known.items())), "findings": [
            {"anomalies": list(f.anomalies), "steps_found": f.steps_found, "steps_shrunk": f.steps_shrunk,
             "seconds_to_find": round(f.seconds_to_find, 3), "seconds_to_shrink": round(f.seconds_to_shrink, 3),
             "run-directory": str(w)} for f, w in zip(findings, written)]}, "\n".join(lines))
        return EXIT_INVALID if findings else EXIT_VALID

    _guard(go)


def _explore_bar(base: Any, bugs: tuple[str, ...], budget: float, seed: int, jobs: int, executor: str,
                 show: bool) -> Any:
    """Several campaigns (processes or Dask workers) with a progress bar on stderr: campaigns done of
    ``jobs``, their runs, runs/s and findings so far (only on a terminal)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from eosim import _explore

    console = Console(stderr=True)
    totals = {"runs": 0, "findings": 0}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=not (show and console.is_terminal)) as bar:
        task = bar.add_task(f"exploring ({jobs} campaigns on {executor})", total=jobs)

        def finished(c: Any) -> None:
            totals["runs"] += c.runs
            totals["findings"] += c.finding is not None
            rate = totals["runs"] / max(bar.tasks[0].elapsed or 1e-9, 1e-9)
            bar.update(task, advance=1, description=f"exploring on {executor}: {totals['runs']} runs, "
                                                    f"{rate:.1f} runs/s, {totals['findings']} finding(s)")

        return _explore.explore(base=base, reintroduce=bugs, budget=budget, seed=seed, jobs=jobs,
                                executor=executor, finished=finished)


# --- the library ------------------------------------------------------------------------------------


@app.command()
def scenarios(as_json: bool = JSON) -> None:
    """List the built-in scenarios, one line each."""

    def go() -> int:
        from eosim._scenario import load_scenario

        library = [load_scenario(path) for path in sorted(scenario_dir().glob("*.toml"))]
        _emit(as_json, [{"name": s.name, "description": s.description,
                         "expect-anomalies": list(s.scenario.expect_anomalies),
                         "conformance": s.scenario.conformance} for s in library],
              "\n".join(f"{s.name:40} {s.description}" for s in library))
        return EXIT_VALID

    _guard(go)


@app.command()
def conform(scenarios: Optional[list[Path]] = typer.Argument(None, help="Scenarios (default: the whole library)"),
            bootstrap: Optional[str] = typer.Option(None, help="A running broker, HOST:PORT"),
            start_kafka: bool = typer.Option(False, "--start-kafka", help="Start a broker from the Maven jars"),
            kafka_version: str = typer.Option(
                PINNED_RELEASE, help="The broker's Kafka release (a 4.x release on Maven Central): the one "
                "--start-kafka starts, or the one at --bootstrap; the simulator runs with that release's bugs"),
            transaction_version: int = typer.Option(2, help="transaction.version the broker is formatted with"),
            client: Optional[str] = typer.Option(
                None, help="Run every actor on this client: librdkafka (confluent-kafka) or java (kafka-clients "
                "in a JVM; the simulator as eosim.client = \"java\"). Default: each actor's own eosim.client"),
            as_json: bool = JSON) -> None:
    """Run scenarios on the simulator and on real Kafka; compare.

    Replays each scenario on the simulator and on a real Kafka broker and prints whether they agree."""

    def go() -> int:
        from eosim._realkafka.conform import conform_command

        return conform_command(scenarios or [], bootstrap, start_kafka, kafka_version, transaction_version,
                               client=client, as_json=as_json)

    _guard(go)


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds: a run directory being written removes its temporary dir


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    except BrokenPipeError:  # `eosim ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        os._exit(0)
