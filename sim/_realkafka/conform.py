"""eosim._realkafka.conform
=====================

``eosim conform``: run scenarios on the simulator and on a real Kafka broker and compare the two
observations (docs/conformance.md). Each disagreement leaves ``sim.json``, ``kafka.json``,
``diff.txt`` and the actors' librdkafka logs in ``out_dir/<scenario>/``.

The real clients (the ``conformance`` extra) are imported only once the command knows it can run:
without them it says what to install.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import shutil
import socket
import sys
import time
import traceback
from pathlib import Path

from attrs import frozen
from rich.console import Console
from rich.table import Table

from eosim import _scenario as sc
from eosim._observation import nearest
from eosim._realkafka.broker import (DEFAULT_VERSION, Interrupted, KafkaBroker, KafkaUnavailable, bootstrap_from_env,
                                     cleanup_on_signals)
from eosim._realkafka.cluster import KafkaCluster
from eosim._library import BadInput, resolve_scenario, scenario_dir
from eosim._realkafka.known import explain
from eosim._runner import reachable
from eosim.models.bugs import validate_release

EXIT_AGREE, EXIT_DISAGREE, EXIT_BAD_INPUT = 0, 1, 254
TRANSACTION_VERSIONS = (0, 1, 2)  # the levels Kafka 4.1's transaction.version feature supports
EXTRA_MODULES = ("confluent_kafka", "kafka")  # confluent-kafka drives the actors; kafka-python reads features
INSTALL_HINT = "pip install 'eosim[conformance]'"
CLIENTS = ("librdkafka", "java")  # eosim._realkafka.driver.CLIENTS, without importing confluent-kafka
PROBE_TIMEOUT_S = 3.0  # per step of the reachability probe: TCP connect, then a Metadata answer


@frozen(kw_only=True)
class Row:
    scenario: str
    sim: str  # "valid", "INVALID", "unknown", or "error: ..."
    kafka: str  # the same verdicts for the run on Kafka, "not run: ...", or "skipped: ..."
    agree: bool | None  # None: not compared
    differences: tuple[str, ...] = ()
    sim_s: float = 0.0
    kafka_s: float = 0.0
    out: Path | None = None  # where the disagreement's files are
    allowed: int = 1  # the observations the simulator reaches: more than one for a racy scenario (racy_seeds)
    known: bool = False  # every difference is a kept one (eosim._realkafka.known)

    @property
    def ok(self) -> bool:
        return bool(self.agree) or self.known or self.kafka.startswith("skipped")


def _verdict(valid: bool | str) -> str:
    return {True: "valid", False: "INVALID"}.get(valid, "unknown")  # type: ignore[arg-type]


def _verdicts(outcomes: list) -> str:
    """The simulator's verdict; for a racy scenario the distinct verdicts of its reachable observations, and
    how many observations it reaches."""
    verdicts = sorted({_verdict(outcome.result.valid) for outcome in outcomes})
    return "/".join(verdicts) + (f" ({len(outcomes)} observations)" if len(outcomes) > 1 else "")


def _error(exc: BaseException) -> str:
    return f"error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


class Brokers:
    """The brokers scenarios run on: the given one for the default configuration (``version`` is its
    release: Kafka does not tell a client which release it runs), and (with ``start``) one started per
    other (release, transaction.version, overrides), kept for the whole run."""

    def __init__(self, bootstrap: str | None, start: bool, version: str, transaction_version: int) -> None:
        self.bootstrap, self.start, self.version, self.tv = bootstrap, start, version, transaction_version
        self.started: dict[tuple[str, int, tuple[tuple[str, str], ...]], KafkaBroker] = {}
        self.clusters: dict[tuple[str, int, tuple[tuple[str, str], ...], int], KafkaCluster] = {}

    def get(self, tv: int, overrides: dict[str, str], version: str) -> str | None:
        """A bootstrap for a broker with this configuration, or None when none may be started."""
        if self.bootstrap is not None and (tv, overrides, version) == (self.tv, {}, self.version):
            return self.bootstrap
        if not self.start:
            return None
        key = (version, tv, tuple(sorted(overrides.items())))
        if key not in self.started:
            self.started[key] = KafkaBroker(version, overrides).start(transaction_version=tv)
        return self.started[key].bootstrap

    def cluster(self, tv: int, overrides: dict[str, str], version: str, brokers: int) -> KafkaCluster | None:
        """A started cluster of ``brokers`` brokers with this configuration (always one the command starts: an
        external cluster's JVMs cannot be killed), or None when none may be started."""
        if not self.start:
            return None
        key = (version, tv, tuple(sorted(overrides.items())), brokers)
        if key not in self.clusters:
            self.clusters[key] = KafkaCluster(brokers, version, overrides).start(transaction_version=tv)
        return self.clusters[key]

    def stop(self) -> None:
        for broker in self.started.values():
            broker.stop()
        for cluster in self.clusters.values():
            cluster.stop()


def conform(paths: list[Path], *, bootstrap: str | None = None, start_kafka: bool = False,
            kafka_version: str = DEFAULT_VERSION, transaction_version: int = 2, client: str | None = None,
            out_dir: Path = Path("runs/conform")) -> list[Row]:
    """Run every scenario on both backends; ``transaction_version`` and ``kafka_version`` are those of
    ``bootstrap`` (or of the broker started for scenarios that do not set their own), and the simulator
    runs as that release (its bugs, models/bugs.py); ``client`` puts every actor on that client
    (eosim._realkafka.driver.on_client)."""
    from eosim._realkafka.driver import on_client

    scenarios = [on_client(sc.load_scenario(path), client) for path in paths]
    if bootstrap is not None:
        probe(bootstrap)
    brokers = Brokers(bootstrap, start_kafka, kafka_version, transaction_version)
    try:
        return [_conform_one(scenario, brokers, out_dir, client) for scenario in scenarios]
    finally:
        brokers.stop()


def missing_extra() -> str | None:
    """None when the conformance extra imports, else which module does not (and why)."""
    for module in EXTRA_MODULES:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"{module} ({exc})"
    return None


def probe(bootstrap: str) -> None:
    """Fail fast, in one sentence, when nothing at ``bootstrap`` answers as a Kafka broker: a TCP
    connect to each address, then one Metadata request with librdkafka's logging off (left alone, a
    client retries for its whole request timeout and logs every failed connect)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    reasons = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=PROBE_TIMEOUT_S).close()
            break
        except (OSError, ValueError) as exc:
            reasons.append(f"{address.strip()}: {getattr(exc, 'strerror', None) or exc}")
    else:
        raise KafkaUnavailable(f"nothing listens at {bootstrap} ({'; '.join(reasons)})")
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "reconnect.backoff.max.ms": 500})
    try:
        admin.list_topics(timeout=PROBE_TIMEOUT_S)
    except KafkaException as exc:
        raise KafkaUnavailable(f"no Kafka broker answered at {bootstrap} within {PROBE_TIMEOUT_S:g} s "
                               f"({exc.args[0].str()})") from None


def _conform_one(scenario: sc.Scenario, brokers: Brokers, out_dir: Path, client: str | None = None) -> Row:
    from eosim._realkafka.driver import BrokerMismatch, broker_requirements, for_broker, kafka_version_of, run_on_kafka

    out = out_dir / scenario.name
    if out.exists():
        shutil.rmtree(out)  # files of an earlier disagreement
    if not scenario.scenario.conformance:
        aged = sorted(name for name, actor in scenario.actors.items() if actor.aged is not None)
        why = f" (aged producers {', '.join(aged)}: a real broker cannot be aged)" if aged else ""
        return Row(scenario=scenario.name, sim="-", kafka=f"skipped: conformance = false{why}", agree=None)
    version = kafka_version_of(scenario, brokers.version)
    try:
        tv, overrides = broker_requirements(scenario, brokers.tv)
    except BrokerMismatch as exc:
        return Row(scenario=scenario.name, sim="-", kafka=f"not run: {exc}", agree=None)
    files: dict[str, str] = {}  # written to ``out`` unless the observations agree

    started = time.monotonic()
    try:
        allowed = reachable(for_broker(scenario, tv, version))
        sim, sim_verdict = allowed[0], _verdicts(allowed)
    except Exception as exc:  # noqa: BLE001 - a row of the table, with the traceback in ``out``
        allowed, sim, sim_verdict, files["sim-error.txt"] = [], None, _error(exc), traceback.format_exc()
    sim_s = time.monotonic() - started

    n = len(scenario.brokers)
    cluster = brokers.cluster(tv, overrides, version, n) if n > 1 else None
    bootstrap = cluster.bootstrap if cluster is not None else None if n > 1 else brokers.get(tv, overrides, version)
    kafka, kafka_s = None, 0.0
    if bootstrap is None:
        what = f"a {n}-broker Kafka {version} cluster" if n > 1 else f"a Kafka {version} broker"
        kafka_verdict = (f"not run: needs {what} with transaction.version={tv} and "
                         f"{overrides or 'no overrides'} (use --start-kafka)")
    else:
        started = time.monotonic()
        out.mkdir(parents=True, exist_ok=True)  # the actors' logs
        try:
            kafka = run_on_kafka(scenario, bootstrap, transaction_version=tv, log_dir=out, cluster=cluster)
            kafka_verdict = _verdict(kafka.result.valid)
        except Exception as exc:  # noqa: BLE001
            kafka_verdict, files["kafka-error.txt"] = _error(exc), traceback.format_exc()
        kafka_s = time.monotonic() - started

    differences: list[str] = []
    if sim is not None and kafka is not None:
        # A racy scenario agrees when Kafka's observation is any one the simulator reaches; on a disagreement
        # the files show the closest of them.
        index, differences = nearest([outcome.observation for outcome in allowed], kafka.observation)
        sim = allowed[index]
        if differences:
            files.update({"sim.json": sim.observation.to_json() + "\n",
                          "kafka.json": kafka.observation.to_json() + "\n",
                          "diff.txt": "".join(f"{line}\n" for line in differences)})
    if files:
        _write(out, files)
    elif out.exists():
        shutil.rmtree(out)
    agree = None if sim is None or kafka is None else not differences
    unexplained, _stale = explain(client, scenario.name, tv, differences, version)
    return Row(scenario=scenario.name, sim=sim_verdict, kafka=kafka_verdict, agree=agree,
               differences=tuple(differences), sim_s=sim_s, kafka_s=kafka_s, out=out if files else None,
               allowed=max(len(allowed), 1), known=bool(differences) and not unexplained)


def _write(out: Path, files: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")


def print_table(rows: list[Row], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(title="conformance: simulator vs Kafka")
    for column, justify in (("scenario", "left"), ("sim", "left"), ("kafka", "left"), ("agree", "center"),
                            ("sim s", "right"), ("kafka s", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        agree = ("[yellow]known[/]" if row.known else
                 {True: "[green]yes[/]", False: "[red]NO[/]"}.get(row.agree, "-"))  # type: ignore[arg-type]
        table.add_row(row.scenario, row.sim, row.kafka, agree, f"{row.sim_s:.1f}", f"{row.kafka_s:.1f}")
    console.print(table)
    for row in rows:
        if row.out is not None:
            console.print(f"{row.scenario}: files in {row.out}")
            for line in row.differences:
                console.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)


def conform_command(scenarios: list[Path], bootstrap: str | None, start_kafka: bool, kafka_version: str,
                    transaction_version: int, *, client: str | None = None, as_json: bool = False) -> int:
    """``eosim conform``: 0 when every scenario agrees (or is marked conformance = false), 1 when
    one disagrees or could not run (no broker at ``bootstrap`` included), 254 for bad input (and a
    missing conformance extra); when signal N (SIGINT, SIGTERM) stops it, the process exits 128 + N
    once every broker it started, actor process and temporary directory is gone. ``as_json``: the rows as JSON on
    stdout."""
    missing = missing_extra()
    if missing is not None:
        print(f"eosim: conform runs real Kafka clients, and the conformance extra is not installed "
              f"(cannot import {missing}): {INSTALL_HINT}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        paths = [resolve_scenario(p) for p in scenarios] or sorted(scenario_dir().glob("*.toml"))
        for path in paths:
            sc.load_scenario(path)
        bootstrap = bootstrap or bootstrap_from_env()
        if bootstrap is None and not start_kafka:
            raise BadInput("give --bootstrap HOST:PORT (or set EOSIM_KAFKA_BOOTSTRAP), or --start-kafka")
        try:
            validate_release(kafka_version)
        except ValueError as exc:
            raise BadInput(f"--kafka-version: {exc}") from None
        if transaction_version not in TRANSACTION_VERSIONS:
            raise BadInput(f"--transaction-version must be one of {TRANSACTION_VERSIONS}")
        if client is not None and client not in CLIENTS:
            raise BadInput(f"--client must be one of {', '.join(CLIENTS)}")
    except (BadInput, sc.ScenarioError) as err:
        print(f"eosim: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with cleanup_on_signals():
            rows = conform(paths, bootstrap=bootstrap, start_kafka=start_kafka, kafka_version=kafka_version,
                           transaction_version=transaction_version, client=client)
    except KafkaUnavailable as exc:
        print(f"eosim: no broker: {exc.reason}", file=sys.stderr)
        return EXIT_DISAGREE
    except Interrupted as exc:
        print(f"eosim: {exc}: stopped; the brokers and actors it started are gone", file=sys.stderr)
        # Everything it started is gone by now. Run the exit hooks (multiprocessing removes its socket
        # directory there), then skip the interpreter's teardown: destroying a half-used librdkafka
        # client while its threads still run can crash the process (a rare SIGSEGV seen in
        # tests/conformance/test_harness_signals.py), which would hide this exit code.
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + exc.signum)
    if as_json:
        print(json.dumps([{"scenario": r.scenario, "sim": r.sim, "kafka": r.kafka, "agree": r.agree, "known": r.known,
                           "differences": list(r.differences), "sim_s": round(r.sim_s, 3),
                           "kafka_s": round(r.kafka_s, 3), "out": None if r.out is None else str(r.out),
                           "allowed": r.allowed}
                          for r in rows], indent=2, sort_keys=True))
    else:
        print_table(rows)
    return EXIT_AGREE if all(row.ok for row in rows) else EXIT_DISAGREE
