"""eosim.strategies: every drawn scenario loads, survives its TOML file, and (a small sample) runs."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eosim import strategies
from eosim._explore import documents, scenario_toml, size
from eosim._runner import run_scenario
from eosim._scenario import load_scenario_text, scenario_from_dict

FAST = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(strategies.scenario_documents())
def test_every_drawn_document_loads_and_round_trips_through_its_scenario_file(document: dict) -> None:
    scenario = scenario_from_dict(document, name=document["scenario"]["name"], header="drawn")
    again = load_scenario_text(scenario_toml(document, "drawn"), document["scenario"]["name"])
    assert again == scenario
    strikes = scenario.nemesis.strikes if scenario.nemesis is not None else ()
    assert size(document) == len(scenario.steps) + len(scenario.faults) + len(strikes)
    assert list(strikes) == sorted(strikes, key=lambda strike: strike.at_ms)


@FAST
@given(strategies.workloads(), strategies.cluster_configs())
def test_workloads_use_every_producer_kind_and_known_configs(workload: strategies.Workload, cluster: dict) -> None:
    for actor, spec in workload.actors.items():
        assert spec["kind"] in ("producer", "consumer")
        assert workload.programs.get(actor) or actor == "app" or spec["kind"] == "consumer"
    assert set(cluster) <= {"transaction.version", "transaction.partition.verification.enable",
                            "producer.id.expiration.ms", "producer.id.expiration.check.interval.ms",
                            "transaction.abort.timed.out.transaction.cleanup.interval.ms"}


@settings(max_examples=12, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(documents(None, (), seed=1))
def test_a_sample_of_explored_runs_on_correct_kafka_is_never_invalid(document: dict) -> None:
    """What `eosim explore` with no switch searches: correct Kafka (verification on) under fault schedules."""
    outcome = run_scenario(scenario_from_dict(document, name="scenario", header="drawn"), 1)
    assert outcome.verdict.checks.valid is not False, outcome.verdict.checks.anomaly_types


@settings(max_examples=8, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(strategies.scenarios(kinds=("drop", "txn-log", "coordinator-failover"), producers=("transactional", "idempotent"),
                            readers=("read_committed",), cluster=strategies.cluster_configs(verification=(True,), expiry=(None,))))
def test_the_documented_example_kafka_keeps_its_promises(scenario) -> None:
    """docs/exploration.md's example, as written there."""
    assert run_scenario(scenario).verdict.checks.valid is not False


@FAST
@given(strategies.workloads(), st.data())
def test_deleting_one_op_leaves_the_order_of_every_other_step(workload: strategies.Workload, data) -> None:
    """The programs merge by each op's own slot, so what Hypothesis deletes moves nothing else: the steps
    of the workload without op k of one program are the steps of the whole workload without that op (as
    long as op k held back no later op of its actor: its slot is no later than one of the ops before it)."""
    actor = data.draw(st.sampled_from(sorted(workload.programs)))
    k = data.draw(st.integers(0, len(workload.programs[actor]) - 1))
    assume(k > 0 and workload.programs[actor][k]["_at"] <= max(op["_at"] for op in workload.programs[actor][:k]))
    programs = {a: [{**op, "note": f"{a}.{i}"} for i, op in enumerate(ops)] for a, ops in workload.programs.items()}
    smaller = {**programs, actor: [op for i, op in enumerate(programs[actor]) if i != k]}
    nothing = strategies.Schedule([], [])
    whole = strategies.compose(strategies.Workload(workload.topics, workload.actors, programs), nothing, {})["steps"]
    expected = [step for step in whole if step["note"] != f"{actor}.{k}"]
    assert strategies.compose(strategies.Workload(workload.topics, workload.actors, smaller), nothing,
                              {})["steps"] == expected


@FAST
@given(strategies.workloads(), st.integers(1, strategies.SLOTS + 1))
def test_a_rule_at_a_slot_is_armed_once_every_step_of_an_earlier_slot_is_done(workload: strategies.Workload,
                                                                                 slot: int) -> None:
    programs = {a: [{**op, "note": f"{a} {op['_at']}"} for op in ops] for a, ops in workload.programs.items()}
    schedule = strategies.Schedule([{"name": "f1", "action": "drop", "message": "Produce", "count": 1,
                                     "after_slot": slot}], [])
    document = strategies.compose(strategies.Workload(workload.topics, workload.actors, programs), schedule, {})
    ready = 0
    readiness = []  # each step's slot as merged: the largest slot of its actor's ops so far (setup first)
    seen: dict[str, int] = {}
    for step in document["steps"]:
        owner, at = step["note"].split()
        seen[owner] = ready = max(seen.get(owner, 0), int(at))
        readiness.append(-1 if owner in ("source", "app") else ready)
    done = [i for i, r in enumerate(readiness) if r < slot]
    (rule,) = document["faults"]
    assert rule.get("after_step") == (done[-1] if done else None)
    assert done == list(range(len(done)))  # they are the first steps


@FAST
@given(strategies.scenario_documents())
def test_rules_on_the_brokers_own_requests_name_a_broker_api_and_strike_a_few_times(document: dict) -> None:
    for rule in document.get("faults", ()):
        if "src" in rule:
            assert rule["src"] == strategies.BROKER and rule["message"] in strategies.BROKER_APIS
            assert rule["count"] != "until-healed"
        if rule.get("message") == "WriteTxnMarkers":
            assert rule["count"] != "until-healed"


def _exchanged(document: dict) -> dict[str, tuple[str, ...]]:
    """``strategies.exchanged`` of a drawn document's workload (its steps as one program)."""
    workload = strategies.Workload({t["name"]: t.get("partitions", 1) for t in document["topics"]},
                                   document["actors"], {"": document["steps"]})
    return dict(strategies.exchanged(workload))


@FAST
@given(strategies.scenario_documents())
def test_a_rule_aims_at_a_message_that_what_it_selects_exchanges(document: dict) -> None:
    """A rule on a message its targets never send strikes nothing: the broker's own requests are ones it sends in
    this run, a node's rule one of that node's APIs (the broker's connections carry all), anyone's one somebody
    sends, and a rule counted by a node's k-th request of an API counts one that node sends."""
    sent = _exchanged(document)
    everyone = {api for apis in sent.values() for api in apis}
    for rule in document.get("faults", ()):
        if rule["message"] == "TxnLogAppend":
            continue
        if "src" in rule:
            assert rule["message"] in sent[strategies.BROKER]
        elif rule.get("node") not in (None, strategies.BROKER) and sent.get(rule["node"]):
            assert rule["message"] in sent[rule["node"]]
        else:
            assert rule["message"] in everyone
        if "after_message" in rule:
            assert rule["after_message"] in sent[rule["after_node"]]


@settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(strategies.scenario_documents(kinds=()))
def test_what_a_run_sends_is_in_the_vocabulary_its_rules_draw_from(document: dict) -> None:
    """``exchanged`` leaves out nothing a fault-free run sends: every request of a workload API a node sends is one
    of its APIs there (the broker's own under BROKER), so grounding the rules on it hides no message from them."""
    sent = _exchanged(document)
    outcome = run_scenario(scenario_from_dict(document, name="d", header="drawn"), 1)
    for event in outcome.trace.of_kinds(frozenset({"net.request"})):
        api = event.msg.removesuffix("Request") if event.kind == "net.request" else None
        if api in strategies.WORKLOAD_APIS:
            node = event.node.split("/", 1)[0].split("#", 1)[0]
            assert api in sent.get(node, ()), (node, api)


def test_the_vocabulary_reaches_java_producers_and_the_brokers_own_requests() -> None:
    """Neither is a hint for a bug: each is drawn like any other choice, and Hypothesis can find one."""
    from hypothesis import find

    java = find(strategies.scenario_documents(), lambda d: any(
        a["config"].get("eosim.client") == "java" and "transactional.id" in a["config"] for a in d["actors"].values()),
        settings=settings(database=None, max_examples=2_000, suppress_health_check=list(HealthCheck)))
    assert scenario_from_dict(java, name="j", header="drawn").actors
    own = find(strategies.scenario_documents(), lambda d: any(
        r.get("src") == strategies.BROKER and r["message"] == "AddPartitionsToTxn" for r in d.get("faults", ())),
        settings=settings(database=None, max_examples=2_000, suppress_health_check=list(HealthCheck)))
    assert scenario_from_dict(own, name="o", header="drawn").faults
