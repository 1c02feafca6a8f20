"""eosim._explore
=============

``eosim explore`` (docs/exploration.md): search workloads and fault schedules (eosim.strategies) for
runs the checkers call INVALID, with Hypothesis's own engine: ``@given`` generates (in rounds of ``ROUND_EXAMPLES``, each
with its own seed, so that the targeted phase starts half-way through each), ``hypothesis.target`` steers
towards runs with more LSO lag, producer-id/epoch changes, rejected appends and transaction
transitions, and Hypothesis shrinks what fails. Nothing here shrinks by hand.

With ``--reintroduce KAFKA-N`` a run counts as a finding only when the same scenario and seed are clean
(valid) with the switch off, and the shrinker keeps that comparison: every smaller candidate is judged the
same way. Without a switch an INVALID run is a finding (a false alarm of the simulator, or a real finding
about Kafka) unless a known finding (eosim._findings: documented Kafka or librdkafka behaviour, with its
library scenario) explains every anomaly: such runs are counted per known finding and the search goes on.

A campaign stops at its first finding, shrinks it, and writes it as a normal run directory
``OUT/finding-N/`` whose scenario.toml ``eosim run`` reproduces (exit 1). ``jobs`` campaigns run in
processes, each with its own Hypothesis seed (``seed + job``), all with the same budget.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import signal
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Sequence

from attrs import evolve, frozen

from eosim.models.bugs import HISTORICAL_BUGS, PINNED_RELEASE, bugs_of, cluster_switch
from eosim.models.config import KAFKA_VERSION_KEY
from eosim import _executor, strategies
from eosim._findings import classify

ROUND_EXAMPLES = 100
# A drawn run's own budget of simulation events (at most the format's MAX_EVENTS): a run that reaches it stops,
# its verdict is unknown, and the campaign counts it (``Campaign.cut``) instead of stalling on it. Drawn runs
# take a few thousand events (150 drawn on seed 0: median 129, max 4,695); at ~80,000 events per CPU second
# this bounds a run near one second.
RUN_EVENTS = 50_000
INT32_MAX = 2**31 - 1
SIGNALS = {  # hypothesis.target label -> the trace event kinds it counts
    "pid-or-epoch-changes": frozenset({"client.pid"}),
    "coordinator-transitions": frozenset({"txn.state"}),
    "rejected-appends": frozenset({"log.reject", "log.reject_marker", "log.duplicate"}),
}


class _BudgetSpent(BaseException):
    """Ends a Hypothesis run from inside the test (a BaseException: Hypothesis does not take it for a failure)."""


class _Terminated(BaseException):
    """SIGTERM during a campaign. Hypothesis takes a SystemExit raised inside a test for a failing example and
    replays it (a traceback, then exit 255), so the signal crosses Hypothesis as this instead."""


@contextmanager
def _terminable() -> Any:
    """Where SIGTERM already unwinds (a Python handler, as the CLI's), it raises _Terminated inside the campaign;
    past Hypothesis the caller's own handler takes the signal (the CLI's exits 143). A handler interrupted inside
    a garbage collector's callback is swallowed there, so the signal is also kept for the next example."""
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous) or threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: list[int] = []

    def terminated(signum: int, _frame: Any) -> None:
        received.append(signum)
        raise _Terminated

    def unraisable(info: Any) -> None:  # the one a gc callback swallowed is kept in ``received``: no report
        if not isinstance(info.exc_value, _Terminated):
            hook(info)

    hook = sys.unraisablehook
    signal.signal(signal.SIGTERM, terminated)
    sys.unraisablehook = unraisable
    try:
        yield received
    except _Terminated:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = hook
    if received:
        previous(received[0], None)


# A campaign's young-generation threshold (Python's default: 700 allocations): drawing a document allocates many
# short-lived containers, and fewer, larger young collections cost less in all (3-5 % more runs per CPU second,
# docs/exploration.md, "Session 8: yield"); the runs keep their own policy (eosim._runner).
YOUNG_THRESHOLD = 5_000


@contextmanager
def _fewer_young_collections() -> Any:
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], YOUNG_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


class _Found(Exception):
    """The test's failure: the run is INVALID (and clean with the switch off)."""


class SimulatorCrash(Exception):
    """A drawn scenario made the simulator raise: a bug of eosim's, not a finding about Kafka. Carries the scenario
    (shrunk by Hypothesis like any failure) and the traceback, so the CLI can write a file that reproduces it."""

    def __init__(self, document: dict[str, Any], text: str) -> None:
        super().__init__(text.strip().splitlines()[-1] if text.strip() else "simulator crash")
        self.document, self.text = document, text

    def __reduce__(self):  # back from a worker process or a Dask worker whole
        return (type(self), (self.document, self.text))


def _found(anomalies: tuple[str, ...]) -> None:
    """The test's failure, raised from this one place (Hypothesis tells failures apart by where they are raised)."""
    raise _Found(", ".join(anomalies))


@frozen
class Finding:
    anomalies: tuple[str, ...]
    document: dict[str, Any]  # the shrunk scenario document
    steps_found: int  # steps + fault rules of the first failing example
    steps_shrunk: int
    seconds_to_find: float
    seconds_to_shrink: float
    runs: int

    def line(self, index: int) -> str:
        return (f"finding-{index}: {', '.join(self.anomalies)}: {self.steps_shrunk} steps (from {self.steps_found}), "
                f"found in {self.seconds_to_find:.1f} s, shrunk in {self.seconds_to_shrink:.1f} s")


@frozen
class Campaign:
    seed: int
    runs: int
    seconds: float
    finding: Finding | None
    known: dict[str, int]  # INVALID runs a known finding explains (no switch only): name -> runs
    cut: int = 0  # runs stopped at their limits (RUN_EVENTS, MAX_SIM_MS): unknown, neither clean nor findings


def size(document: dict[str, Any]) -> int:
    """A scenario's size as the benchmark counts it: its steps, fault rules and nemesis strikes."""
    return (len(document["steps"]) + len(document.get("faults", ()))
            + len(document.get("nemesis", {}).get("strikes", ())))


def switched(document: dict[str, Any], reintroduce: Sequence[str]) -> dict[str, Any]:
    """``document`` with the historical bugs ``reintroduce`` switched on in its [cluster]."""
    cluster = dict(document["cluster"])
    ids = [b for b in reintroduce if HISTORICAL_BUGS[b].kafka_switch is None]
    if ids:
        cluster["eosim.reintroduce"] = ids
    for bug in reintroduce:
        if HISTORICAL_BUGS[bug].kafka_switch is not None:
            key, value = cluster_switch(bug)
            cluster[key] = value
    return {**document, "cluster": cluster}


def release_of(base: dict[str, Any] | None) -> str:
    """The Kafka release a search runs as: the base scenario's, else the pinned one."""
    return (base or {}).get("cluster", {}).get(KAFKA_VERSION_KEY, PINNED_RELEASE)


def check_bugs(reintroduce: Sequence[str], release: str = PINNED_RELEASE) -> None:
    """Refuse unknown or repeated ids (ValueError naming the known ones), and bugs ``release`` already has:
    with the switch off the run has the bug all the same, so no run can be a finding."""
    for bug in reintroduce:
        if bug not in HISTORICAL_BUGS:
            raise ValueError(f"unknown historical bug {bug!r} (known: {', '.join(HISTORICAL_BUGS)})")
    if len(set(reintroduce)) != len(reintroduce):
        raise ValueError("a bug is listed twice in --reintroduce")
    present = [bug for bug in reintroduce if bug in bugs_of(release)]
    if present:
        raise ValueError(f"Kafka {release}, the release explored, has {', '.join(present)} already "
                         f"(models/bugs.py), so no run can find it; explore a release without it "
                         f"([cluster] \"{KAFKA_VERSION_KEY}\" in the scenario)")


class InvalidBase(ValueError):
    """The base scenario's own run is INVALID: every run around it would be, for the base's own reasons."""


def check_base(base: dict[str, Any], seed: int) -> None:
    """Refuse a base whose own run (its own rules, no drawn fault, no switch, the search's seed) the checkers call
    INVALID for reasons no known finding explains: the search would report the base's anomaly as its finding."""
    outcome = _run({**base, "scenario": {**base["scenario"], "seed": seed}})
    checks = outcome.verdict.checks
    if checks.valid is False and not classify(checks.anomalies, outcome.trace):
        raise InvalidBase(f"the scenario is INVALID on its own (seed {seed}, no switch): "
                          f"{', '.join(checks.anomaly_types)}; explore searches for runs a correct base turns INVALID "
                          f"under faults, so the base's own run must be valid (see `eosim run` on it)")


def _run(document: dict[str, Any]) -> Any:
    from eosim._runner import run_scenario
    from eosim._scenario import scenario_from_dict

    scenario = scenario_from_dict(document, name=document["scenario"]["name"], header="eosim explore")
    return run_scenario(scenario, document["scenario"].get("seed", 1), max_events=RUN_EVENTS)


def _hypothesis_order() -> Any:
    """Where the running example stands in the order Hypothesis shrinks by (its shrinker's sort key). These
    are Hypothesis internals (6.170.9 has them): a version without them ranks every example alike, so the
    first finding stays the one whose steps bound the shrink candidates."""
    try:
        from hypothesis.control import current_build_context
        from hypothesis.internal.conjecture.shrinker import sort_key

        return sort_key(current_build_context().data.nodes)
    except (ImportError, AttributeError):
        return ()


def _signals(outcome: Any) -> dict[str, float]:
    counts = {label: 0 for label in SIGNALS}
    kinds = frozenset().union(*SIGNALS.values())
    for event in outcome.trace.of_kinds(kinds):
        for label, wanted in SIGNALS.items():
            if event.kind in wanted:
                counts[label] += 1
    lag = sum(p.high_watermark - p.last_stable_offset for p in outcome.observation.partitions)
    return {"lso-lag": float(lag), **{k: float(v) for k, v in counts.items()}}


def documents(base: dict[str, Any] | None, reintroduce: Sequence[str], seed: int) -> Any:
    """The strategy a campaign searches: fresh scenarios, or ``base`` (a scenario document) with a drawn
    fault schedule and cluster config. Without a bug switch the search looks for broken promises of
    correct Kafka, so it leaves out what is Kafka's documented behaviour: KIP-890 verification stays on
    (turning it off brings KAFKA-12671 back, eosim.models.bugs), producer ids do not expire within the run
    (a retry after the expiry is a duplicate, fault-producer-id-expired-duplicate), there are no plain producers (their
    retries duplicate, at-least-once) and no read_uncommitted readers (they read aborted records, which
    the Jepsen checker calls G1a). With a switch they are in, and the comparison with the switch off
    filters them out."""
    from hypothesis import strategies as st

    clusters = (strategies.cluster_configs() if reintroduce
                else strategies.cluster_configs(verification=(True,), expiry=(None,)))
    producers = strategies.PRODUCER_KINDS if reintroduce else ("transactional", "idempotent")
    readers = strategies.ISOLATION_LEVELS if reintroduce else ("read_committed",)
    workloads = strategies.workloads(producers=producers, readers=readers)

    @st.composite
    def around(draw: Any) -> dict[str, Any]:
        if base is None:
            workload = draw(workloads)
            if not reintroduce:
                workload = _without_message_timeouts(workload)
        else:
            workload = strategies.Workload({t["name"]: t.get("partitions", 1) for t in base.get("topics", ())},
                                           dict(base.get("actors", {})), {"": list(base["steps"])})
        brokers = int((base or {}).get("cluster", {}).get("brokers", 1))  # broker ops strike broker-2..N
        # a base that kills brokers itself keeps that to itself: a drawn kill could meet a broker it has down
        kinds = [k for k in strategies.FAULT_KINDS
                 if k != "broker-restart" or not any(s["op"] == "crash_broker" for s in (base or {}).get("steps", ()))]
        schedule = draw(strategies.fault_schedules(workload, kinds, brokers=brokers))
        cluster = {**draw(clusters), **(base or {}).get("cluster", {})}
        document = strategies.compose(workload, schedule, cluster, name="scenario",
                                      description="a run eosim explore found")
        if base is not None:
            document["topics"] = [dict(t) for t in base.get("topics", ())]  # with replication_factor and config
            # the base's own rules keep their step: its steps moved where nemesis groups were inserted
            moved = {id(step): i for i, step in enumerate(document["steps"])}
            own = [{**rule, "after_step": moved[id(base["steps"][rule["after_step"]])]} if "after_step" in rule
                   else rule for rule in base.get("faults", ())]
            taken = {rule["name"] for rule in own}
            drawn = []
            for rule in document.get("faults", ()):  # a drawn rule is named after the base's own (f1, f2, ...)
                name = rule["name"]
                while name in taken:
                    name = f"explore-{name}"
                taken.add(name)
                drawn.append({**rule, "name": name})
            document["faults"] = [*own, *drawn]
            if not document["faults"]:
                del document["faults"]
        document["scenario"]["seed"] = seed
        return document

    return around()


def _without_message_timeouts(workload: strategies.Workload) -> strategies.Workload:
    """Idempotent (not transactional) producers that never time a message out (message.timeout.ms = 0).
    When a message times out, librdkafka bumps the epoch and renumbers the messages still queued from
    sequence 0, also those it had sent and is retrying, which the broker may already have: they are
    written twice (rdkafka_broker.c rd_kafka_toppar_producer_serve -> rd_kafka_idemp_drain_epoch_bump;
    rdkafka_partition.c rd_kafka_toppar_pid_change sets epoch_base_msgid to the first queued message).
    That is librdkafka's documented at-least-once edge (INTRODUCTION.md, "Message timeout
    considerations"), not a broken promise; docs/exploration.md. The Java client has no infinite delivery
    timeout (its floor is linger.ms + request.timeout.ms): it gets the largest one. Java's idempotent
    producers are idempotent by default, so a Java producer without transactional.id or an explicit
    enable.idempotence = false is one too."""
    def timeout(config: dict[str, Any]) -> dict[str, Any]:
        java = config.get("eosim.client") == "java"
        idempotent = ("transactional.id" not in config
                      and config.get("enable.idempotence", java) is True)
        return {**config, "message.timeout.ms": INT32_MAX if java else 0} if idempotent else config

    actors = {name: {**actor, "config": timeout(actor["config"])} if actor["kind"] == "producer" else actor
              for name, actor in workload.actors.items()}
    return strategies.Workload(workload.topics, actors, workload.programs)


def campaign(*, base: dict[str, Any] | None = None, reintroduce: Sequence[str] = (), budget: float = 60.0,
             seed: int = 0, shrink_budget: float | None = None,
             progress: Callable[[int, float], None] | None = None,
             clock: Callable[[], float] = time.perf_counter) -> Campaign:
    """Search until the first finding (then shrink it) or until ``budget`` seconds have passed. Shrinking
    gets ``shrink_budget`` seconds more (default: ``budget``); if it runs out, the smallest failing example
    seen so far is the finding. Seconds are ``clock``'s: wall-clock, or ``time.process_time`` (this process's
    CPU seconds, one core's) where a shared machine's load would decide what a wall-clock budget buys."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed as hseed, settings, target
    from hypothesis.errors import Flaky

    started = clock()
    shrink_budget = budget if shrink_budget is None else shrink_budget
    # "target": Hypothesis's own shrink target (its order, its steps). Hypothesis shrinks the failing example first
    # in its order (fewer choices, then simpler ones), which may have more steps than the smallest finding seen: a
    # candidate is run unless it has more steps than that target, so the verdicts stay consistent as it shrinks,
    # and the steps of the target never grow (a run judged by the smallest finding instead refused every deletion
    # from a target with more steps than it: KAFKA-18660 seed 0 stalled at 15).
    state: dict[str, Any] = {"runs": 0, "cut": 0, "first": None, "found_at": None, "best": None, "target": None}
    failed: dict[str, tuple[str, ...]] = {}  # every finding so far (its document as JSON): its anomalies
    known: dict[str, int] = {}
    # every document judged no finding (its digest): its signals. Each round of Hypothesis starts again from
    # its simplest examples and the targeted phase redraws documents, so a repeat is re-targeted, not run again.
    judged: dict[bytes, dict[str, float]] = {}

    def judge(document: dict[str, Any]) -> None:
        if terminating:
            raise _Terminated
        now = clock()
        if state["found_at"] is None and now - started > budget:
            raise _BudgetSpent
        if state["found_at"] is not None and now - state["found_at"] > shrink_budget:
            raise _BudgetSpent
        key = json.dumps(document, sort_keys=True)
        if key in failed:  # Hypothesis replays the example it calls smallest: the same verdict, no run
            _found(failed[key])
        if state["target"] is not None and size(document) > state["target"][1]:
            return  # more steps than the finding Hypothesis shrinks now: never a smaller finding, not run
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        if digest in judged:
            for label, value in judged[digest].items():
                target(value, label=label)
            return
        state["runs"] += 1
        if progress is not None:
            progress(state["runs"], now - started)
        try:
            outcome = _run(switched(document, reintroduce))
        except Exception:  # noqa: BLE001 - any exception of the simulator's is a bug to report with its scenario
            raise SimulatorCrash(document, traceback.format_exc()) from None
        if not outcome.completed:
            state["cut"] += 1
            judged[digest] = {}
            return  # stopped at its limits: the checkers cannot vouch for it either way
        signals = judged[digest] = _signals(outcome)  # no finding, unless it is one below (then never asked again)
        for label, value in signals.items():
            target(value, label=label)
        if outcome.verdict.checks.valid is not False:
            return
        if reintroduce and _run(document).verdict.checks.valid is not True:
            return  # not the switch's doing: the same run is not clean without it
        explained = None if reintroduce else classify(outcome.verdict.checks.anomalies, outcome.trace)
        if explained:
            for name in explained:
                known[name] = known.get(name, 0) + 1
            return  # documented behaviour of real Kafka or librdkafka, found again: not new
        anomalies = failed[key] = tuple(outcome.verdict.checks.anomaly_types)
        if state["found_at"] is None:
            state["found_at"], state["first"] = clock(), document
        if state["best"] is None or size(document) <= size(state["best"][0]):
            state["best"] = (document, anomalies)
        order = _hypothesis_order()
        if state["target"] is None or order < state["target"][0]:
            state["target"] = (order, size(document))  # Hypothesis shrinks this one from now on
        _found(anomalies)

    strategy = documents(base, reintroduce, seed)
    with _terminable() as terminating, _fewer_young_collections():
        for round_ in itertools.count():
            # Rounds of ROUND_EXAMPLES: Hypothesis climbs the targets from half-way through a round on (a run
            # with max_examples unbounded would never get there); each round has its own seed.
            test = settings(max_examples=ROUND_EXAMPLES, deadline=None, database=None, derandomize=False,
                            suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                            report_multiple_bugs=False, phases=(Phase.generate, Phase.target, Phase.shrink))(
                hseed(seed * 100_000 + round_)(given(strategy)(judge)))
            try:
                test()
            except (_Found, _BudgetSpent):
                break
            except BaseException as err:
                if terminating:  # whatever Hypothesis made of the signal (an example it replays, then calls flaky)
                    raise _Terminated from None
                if not isinstance(err, Flaky) or state["best"] is None:
                    raise
                break  # Hypothesis could not replay its pick; the smallest finding was judged and stands
    seconds = clock() - started
    if state["found_at"] is None:
        return Campaign(seed, state["runs"], seconds, None, known, state["cut"])
    document, anomalies = state["best"]
    finding = Finding(anomalies=anomalies, document=document, steps_found=size(state["first"]),
                      steps_shrunk=size(document), seconds_to_find=state["found_at"] - started,
                      seconds_to_shrink=clock() - state["found_at"], runs=state["runs"])
    return Campaign(seed, state["runs"], seconds, finding, known, state["cut"])


def _campaign_job(kwargs: dict[str, Any]) -> Campaign:
    try:
        return campaign(**kwargs)
    except SimulatorCrash:
        raise
    except Exception:  # noqa: BLE001 - an exception may not survive pickling back: its traceback as text does
        raise RuntimeError(f"campaign {kwargs['seed']} failed:\n{traceback.format_exc()}") from None


def explore(*, base: dict[str, Any] | None = None, reintroduce: Sequence[str] = (), budget: float = 60.0,
            seed: int = 0, jobs: int = 1, executor: str = _executor.LOCAL,
            progress: Callable[[int, float], None] | None = None,
            finished: Callable[[Campaign], None] | None = None) -> list[Campaign]:
    """``jobs`` campaigns, seeds ``seed .. seed + jobs - 1``, on ``executor`` (eosim._executor); one local job
    runs in this process and reports ``progress(runs, seconds)``. ``finished(campaign)`` as each one ends."""
    check_bugs(reintroduce, release_of(base))
    _executor.check(executor)
    if base is not None:
        check_base(base, seed)
    kwargs = [dict(base=base, reintroduce=tuple(reintroduce), budget=budget, seed=seed + j) for j in range(jobs)]
    if jobs == 1 and executor == _executor.LOCAL:
        campaigns = [campaign(**kwargs[0], progress=progress)]
        if finished is not None:
            finished(campaigns[0])
        return campaigns
    return _executor.run_all(_campaign_job, kwargs, executor=executor, workers=jobs,
                             progress=None if finished is None else lambda _i, c: finished(c))


# -- findings as run directories ------------------------------------------------------------------------

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, str)):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def scenario_toml(document: dict[str, Any], header: str) -> str:
    """The scenario file of a document: ``header`` as its leading comment block, then its tables."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()] + [""]

    def table(title: str, body: dict[str, Any]) -> None:
        lines.append(title)
        lines.extend(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in body.items())
        lines.append("")

    table("[scenario]", document["scenario"])
    table("[cluster]", document.get("cluster", {}))
    for topic in document.get("topics", ()):
        table("[[topics]]", topic)
    for name, actor in document.get("actors", {}).items():
        table(f"[actors.{name}]", actor)
    for rule in document.get("faults", ()):
        table("[[faults]]", rule)
    if "nemesis" in document:
        nemesis = dict(document["nemesis"])
        strikes = nemesis.pop("strikes", ())
        table("[nemesis]", nemesis)
        for strike in strikes:
            table("[[nemesis.strikes]]", strike)
    for step in document["steps"]:
        table("[[steps]]", step)
    return "\n".join(lines)


def finding_files(finding: Finding, reintroduce: Sequence[str]) -> tuple[str, Any]:
    """The scenario text of a finding (the bugs switched on, as found) and its outcome when run."""
    from eosim._runner import run_scenario
    from eosim._scenario import load_scenario_text

    document = switched(finding.document, reintroduce)
    bugs = f" with {', '.join(reintroduce)} switched back on; clean without" if reintroduce else ""
    header = (f"Found by eosim explore{bugs}: the checkers call this run INVALID ({', '.join(finding.anomalies)}).\n"
              f"Shrunk by Hypothesis from {finding.steps_found} to {finding.steps_shrunk} steps and fault rules.")
    document = {**document, "scenario": {**document["scenario"],
                                         "description": f"eosim explore finding: {', '.join(finding.anomalies)}"}}
    text = scenario_toml(document, header)
    scenario = load_scenario_text(text, "scenario")
    return text, run_scenario(scenario, scenario.seed)


def write_crash(out: Path, crash: SimulatorCrash, reintroduce: Sequence[str]) -> Path:
    """``out/crash-1/``: the scenario that made the simulator raise (``eosim run`` on it raises again) and the
    traceback, for a bug report; written as a run directory is (eosim._rundir: atomically, with its marker), though
    no run finished."""
    from eosim import _rundir

    header = ("The simulator raised an exception on this scenario, drawn by eosim explore and shrunk by Hypothesis: "
              "a bug of eosim's, not of Kafka.\nThe traceback is in traceback.txt beside this file.")
    target = out / "crash-1"
    _rundir.check_target(target, replace=False)
    files = {"scenario.toml": scenario_toml(switched(crash.document, reintroduce), header), "traceback.txt": crash.text}
    return _rundir.write(target, files, replace=False, scenario="scenario",
                         seed=crash.document["scenario"].get("seed", 1))


def write_findings(out: Path, findings: Sequence[Finding], reintroduce: Sequence[str]) -> list[Path]:
    """``out/finding-N/`` for each finding: a run directory (docs/cli.md) that ``eosim run`` reproduces."""
    from eosim import _rundir
    from eosim._runner import run_dir_files

    written = []
    for n, finding in enumerate(findings, 1):
        text, outcome = finding_files(finding, reintroduce)
        target = out / f"finding-{n}"
        _rundir.check_target(target, replace=False)
        written.append(_rundir.write(target, run_dir_files(outcome, text), scenario="scenario", seed=outcome.seed,
                                     replace=False))
    return written


def base_document(scenario: Any) -> dict[str, Any]:
    """A loaded scenario as the base of a search: its claims dropped (a finding is the checkers' call)."""
    from eosim._scenario import scenario_to_dict

    scenario = evolve(scenario, scenario=evolve(scenario.scenario, expect_anomalies=(), conformance=False),
                      expect=type(scenario.expect)())
    document = scenario_to_dict(scenario)
    document.pop("nemesis", None)  # the explorer draws its own schedule: no in-run randomness
    # bugs are switched on by --reintroduce only, so that the comparison with the switch off holds
    document["cluster"] = {k: v for k, v in document.get("cluster", {}).items() if k != "eosim.reintroduce"}
    return document
