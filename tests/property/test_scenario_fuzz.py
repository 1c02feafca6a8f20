"""The scenario loader on hostile input: random TOML-ish text, random mutations of a valid scenario,
documents drawn from the scenario's own JSON Schema (hypothesis-jsonschema) and TOML text made hostile
(deep nesting, huge integers, 1e400, NaN, wrong types, unicode, truncation) raise nothing but
ScenarioError; generated valid scenarios load; whatever loads round-trips and satisfies the JSON Schema.
experiments/fuzz_cli.py runs the same kinds of input, many more of them, through the CLI."""

import copy
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eosim._client.config import CONSUMER_SETTINGS, PRODUCER_SETTINGS
from eosim.experiments.fuzz_cli import HOSTILE_LITERALS, schema_documents, toml, toml_document
from eosim.models.api import API_NAMES, INFRASTRUCTURE_ERRORS
from eosim._scenario import (
    NEMESIS_KINDS,
    OPS,
    SIMULATOR_OPS,
    ScenarioError,
    load_scenario_text,
    scenario_from_dict,
    scenario_json_schema,
    scenario_to_dict,
)

try:
    import jsonschema

    SCHEMA = jsonschema.Draft202012Validator(scenario_json_schema())
except ImportError:  # optional: the schema check is skipped without it
    SCHEMA = None

# Derandomized so a run is reproducible; no deadline, as the loader's speed is not under test.
FUZZ = settings(max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VALID = """\
# A valid scenario the mutations start from.
[scenario]
name = "fuzz"
description = "d"
seed = 3
expect_anomalies = ["torn-transaction"]
conformance = false

[cluster]
"transaction.version" = 2

[[topics]]
name = "in"
partitions = 2

[[topics]]
name = "out"

[actors.p1]
kind = "producer"
config = { "transactional.id" = "tx", "linger.ms" = 0 }

[actors.c1]
kind = "consumer"
config = { "group.id" = "g1", "auto.offset.reset" = "earliest" }

[[steps]]
actor = "p1"
op = "init_transactions"
timeout_ms = 1000

[[steps]]
actor = "c1"
op = "assign"
partitions = [{ topic = "in", partition = 1, offset = "beginning" }]

[[steps]]
actor = "p1"
op = "produce"
topic = "out"
key = "k"
value = "v"
expect_error = "NONE"

[[steps]]
actor = "c1"
op = "consume"
expect_records = [[0, "k", "v"], { offset = 1 }]

[[steps]]
actor = "p1"
op = "send_offsets_to_transaction"
consumer = "c1"

[[steps]]
actor = "c1"
op = "crash"

[[steps]]
actor = "c1"
op = "restart"

[[steps]]
actor = "nemesis"
op = "pause"
nodes = ["p1"]
ms = 100

[[faults]]
name = "f1"
action = "delay"
message = "Produce"
direction = "request"
node = "p1"
topic = "out"
partition = 0
transactional_id = "tx"
ms = 10
count = 2
after_step = 1

[[faults]]
name = "f2"
action = "error"
error = "NOT_COORDINATOR"
count = "until-healed"

[nemesis]
kinds = ["partition", "drop"]
targets = ["c1"]
interval_ms = 100
duration_ms = 50
after_step = 0
until_step = 3

[[expect.partitions]]
topic = "out"
partition = 0
read_committed = [[0, "k", "v"]]

[[expect.committed]]
group = "g1"
topic = "in"
partition = 1
offset = 1
"""
VALID_DOC = scenario_to_dict(load_scenario_text(VALID, "fuzz"))
HEADER = "h"



def field_names(node) -> set[str]:
    """Every property name in the JSON Schema."""
    if isinstance(node, list):
        return set().union(*map(field_names, node))
    if not isinstance(node, dict):
        return set()
    return set(node.get("properties", {})) | set().union(*map(field_names, node.values()))


# Words the format knows, so mutations often produce near-valid documents.
WORDS = sorted({*field_names(scenario_json_schema()), *OPS, *PRODUCER_SETTINGS, *CONSUMER_SETTINGS,
                "p1", "c1", "in", "out", "g1", "tx",
                "none", "beginning", "end", "stored", "NONE", "_FENCED", "all", "producer", "consumer",
                "transaction.version", "fuzz", ""})

keys = st.sampled_from(WORDS) | st.text(max_size=8)
scalars = (st.booleans() | st.integers(-3, 3) | st.integers() | st.floats(allow_nan=False)
           | st.sampled_from(WORDS) | st.text(max_size=8))
toml_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3), max_leaves=8)
python_values = st.recursive(scalars | st.none() | st.sampled_from([b"x", (1, 2), {1, 2}, object()]),
                             lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                             max_leaves=8)


def accepts(load) -> None:
    """``load()`` either refuses with a ScenarioError or gives a scenario that round-trips and fits the schema."""
    try:
        scenario = load()
    except ScenarioError as err:
        assert err.location and err.reason and str(err).startswith(f"{err.file}: ")
        return
    document = scenario_to_dict(scenario)
    assert scenario_from_dict(document, name=scenario.name, header=scenario.header) == scenario
    if SCHEMA is not None:
        SCHEMA.validate(document)


# --- mutations of a valid document ---------------------------------------------------------------------


def positions(node, found):
    """Every (container, key) in the document tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((node, key))
        positions(child, found)
    return found


@st.composite
def mutated(draw, values):
    doc = copy.deepcopy(VALID_DOC)
    for _ in range(draw(st.integers(1, 3))):
        spots = positions(doc, [])
        container, key = draw(st.sampled_from(spots))
        action = draw(st.sampled_from(["delete", "replace", "rename", "insert", "duplicate"]))
        if action == "delete":
            del container[key]
        elif action == "replace":
            container[key] = draw(values)
        elif action == "rename" and isinstance(container, dict):
            container[draw(keys)] = container.pop(key)
        elif action == "insert":
            if isinstance(container, dict):
                container[draw(keys)] = draw(values)
            else:
                container.insert(key, draw(values))
        elif action == "duplicate" and isinstance(container, list):
            container.insert(key, copy.deepcopy(container[key]))
    return doc


def test_the_valid_document_loads():
    assert scenario_from_dict(VALID_DOC, name="fuzz", header=HEADER).name == "fuzz"


@FUZZ
@given(mutated(python_values))
def test_mutated_documents_raise_only_scenario_errors(doc):
    accepts(lambda: scenario_from_dict(doc, name="fuzz", header=HEADER))


def test_the_emitter_writes_the_valid_document():
    assert scenario_to_dict(load_scenario_text(toml_document(VALID_DOC), "fuzz")) == VALID_DOC


@FUZZ
@given(mutated(toml_values))
def test_mutated_files_raise_only_scenario_errors(doc):
    accepts(lambda: load_scenario_text(toml_document(doc), "fuzz"))


# --- random text -----------------------------------------------------------------------------------------

lines = st.one_of(
    st.sampled_from(["[scenario]", "[cluster]", "[[topics]]", "[actors.p1]", "[actors.c1]", "[[steps]]", "[expect]",
                     "[[expect.partitions]]", "[[expect.committed]]", "[[faults]]", "# comment", "", "[", "]", "=",
                     'x = """', '"""']),
    st.builds(lambda k, v: f"{k} = {v}",
              st.sampled_from(WORDS).map(lambda w: json.dumps(w) if "." in w or not w else w), toml_values.map(toml)),
    st.text(max_size=20),
)


@FUZZ
@given(st.lists(lines, max_size=25))
def test_random_toml_ish_text_raises_only_scenario_errors(text_lines):
    accepts(lambda: load_scenario_text("\n".join(text_lines), "fuzz"))


@FUZZ
@given(st.data())
def test_edited_valid_text_raises_only_scenario_errors(data):
    text_lines = VALID.splitlines()
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(text_lines) - 1))
        edit = data.draw(st.sampled_from(["delete", "duplicate", "replace", "cut"]))
        if edit == "delete":
            del text_lines[i]
        elif edit == "duplicate":
            text_lines.insert(i, text_lines[i])
        elif edit == "replace":
            text_lines[i] = data.draw(lines)
        else:
            text_lines[i] = text_lines[i][: data.draw(st.integers(0, len(text_lines[i])))]
    accepts(lambda: load_scenario_text("\n".join(text_lines), "fuzz"))


# --- generated valid scenarios ---------------------------------------------------------------------------


@st.composite
def valid_scenarios(draw) -> str:
    """A valid scenario, built from the op table so that every op gets generated."""
    topics = {f"t{i}": draw(st.integers(1, 3)) for i in range(draw(st.integers(1, 3)))}
    producers = [f"p{i}" for i in range(draw(st.integers(1, 2)))]
    consumers = [f"c{i}" for i in range(draw(st.integers(1, 2)))]
    doc = {
        "scenario": {"name": "gen", "seed": draw(st.integers(0, 2**32)),
                     "description": draw(st.text(st.characters(blacklist_characters="\n\r"), max_size=10))},
        "topics": [{"name": name, "partitions": n} for name, n in topics.items()],
        "actors": {**{p: {"kind": "producer", "config": {"transactional.id": f"tx-{p}"}} for p in producers},
                   **{c: {"kind": "consumer", "config": {"group.id": f"g-{c}"}} for c in consumers}},
        "steps": [],
    }

    def tp():
        topic = draw(st.sampled_from(sorted(topics)))
        return topic, draw(st.integers(0, topics[topic] - 1))

    stopped = set()
    broker_down = False
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(sorted(OPS)))
        if broker_down != (op == "restart_broker") and op in ("crash_broker", "restart_broker",
                                                                 "coordinator_failover"):
            continue  # the broker's lifecycle: a crashed broker may only restart
        actor = draw(st.sampled_from(producers if OPS[op].kinds == ("producer",) else
                                     consumers if OPS[op].kinds == ("consumer",) else producers + consumers))
        if (actor in stopped) != (op == "restart"):
            continue  # the lifecycle rule: a stopped actor may only restart
        stopped ^= {actor} if op in ("close", "crash", "restart") else set()
        broker_down ^= op in ("crash_broker", "restart_broker")
        step = {"actor": actor, "op": op}
        topic, partition = tp()
        if op == "produce":
            step |= {"topic": topic, "partition": partition, "value": draw(st.text(max_size=5))}
        elif op == "assign":
            step["partitions"] = [{"topic": topic, "partition": partition,
                                   "offset": draw(st.sampled_from([0, 5, "beginning", "end", "stored"]))}]
        elif op == "subscribe":
            step["topics"] = [topic]
        elif op == "send_offsets_to_transaction":
            step |= {"consumer": draw(st.sampled_from(consumers)),
                     "offsets": [{"topic": topic, "partition": partition, "offset": draw(st.integers(0, 9))}]}
        elif op == "consume":
            step["expect_records"] = [[topic, partition, 0, "k", "v"]]
        elif op in ("position", "committed"):
            offset = draw(st.sampled_from([0, "none"]))
            step["expect_offsets"] = [{"topic": topic, "partition": partition, "offset": offset}]
        elif op == "sleep":
            step["ms"] = draw(st.integers(0, 10_000))
        elif OPS[op].kinds == ("nemesis",):
            step["actor"] = "nemesis"
            actors = producers + consumers
            if op in ("restart_broker", "coordinator_failover"):
                step["load_ms"] = draw(st.integers(0, 100))
            if op == "coordinator_failover":
                step["down_ms"] = draw(st.integers(0, 100))
            if op in ("partition", "clog", "disconnect", "pause"):
                nodes = actors if op == "pause" else actors + ["broker-1"]
                step["nodes"] = draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=2, unique=True))
            if op in ("pause", "clog"):
                step["ms"] = draw(st.integers(1, 10_000))
        if draw(st.booleans()) and step["actor"] != "nemesis":
            step["expect_error"] = draw(st.sampled_from(["NONE", "_FENCED", "INVALID_TXN_STATE"]))
        doc["steps"].append(step)
    if broker_down:  # the final observation reads the broker
        doc["steps"].append({"actor": "nemesis", "op": "restart_broker"})
    if not doc["steps"]:
        doc["steps"].append({"actor": producers[0], "op": "init_transactions"})
    if draw(st.booleans()):  # faults are simulator-only
        doc["scenario"]["conformance"] = False
        doc["faults"] = [draw(fault_rules(f"f{i}", topics, producers + consumers, len(doc["steps"])))
                         for i in range(draw(st.integers(0, 3)))]
        if draw(st.booleans()):
            doc["nemesis"] = {"kinds": draw(st.lists(st.sampled_from(NEMESIS_KINDS), min_size=1, unique=True)),
                              "targets": draw(st.lists(st.sampled_from(producers + consumers), unique=True)),
                              "interval_ms": draw(st.integers(2, 5000)), "duration_ms": draw(st.integers(2, 5000))}
    elif any(step["op"] in SIMULATOR_OPS for step in doc["steps"]):
        doc["scenario"]["conformance"] = False
    topic, partition = tp()
    high_watermark = draw(st.integers(0, 5))
    doc["expect"] = {"partitions": [{"topic": topic, "partition": partition, "high_watermark": high_watermark}],
                     "committed": [{"group": f"g-{consumers[0]}", "topic": topic, "partition": partition, "offset": 1}]}
    return toml_document(doc, header="# Generated.\n")


@st.composite
def fault_rules(draw, name: str, topics: dict[str, int], actors: list[str], steps: int) -> dict:
    """A valid [[faults]] rule: a random selector, and an action with its own field."""
    rule: dict = {"name": name, "action": draw(st.sampled_from(["drop", "delay", "disconnect", "error"]))}
    if rule["action"] == "delay":
        rule["ms"] = draw(st.integers(1, 60_000))
    if rule["action"] == "error":
        rule["message"] = draw(st.sampled_from(sorted(INFRASTRUCTURE_ERRORS)))
        rule["error"] = draw(st.sampled_from(sorted(e.name for e in INFRASTRUCTURE_ERRORS[rule["message"]])))
    elif draw(st.booleans()):
        rule["message"] = draw(st.sampled_from(API_NAMES))
        rule["direction"] = draw(st.sampled_from(["request", "response"]))
    if draw(st.booleans()):
        rule["node"] = draw(st.sampled_from(actors + ["broker-1"]))
    if draw(st.booleans()):
        rule["topic"] = draw(st.sampled_from(sorted(topics)))
        rule["partition"] = draw(st.integers(0, topics[rule["topic"]] - 1))
    rule["count"] = draw(st.integers(1, 5) | st.just("until-healed"))
    if draw(st.booleans()):
        rule["after_step"] = draw(st.integers(0, steps - 1))
    return rule


@FUZZ
@given(valid_scenarios())
def test_generated_valid_scenarios_load(text):
    scenario = load_scenario_text(text, "gen")
    assert scenario.header == "Generated."
    accepts(lambda: scenario)


# --- documents from the JSON Schema (hypothesis-jsonschema) --------------------------------------------
# experiments/fuzz_cli.py draws them table by table, whole or spliced into the valid document, so that
# the checks beyond the schema (references, ranges, lifecycle) see near-valid input too.


@settings(FUZZ, max_examples=80)  # a schema draw costs more than the others
@given(schema_documents(VALID_DOC, "fuzz"))
def test_documents_from_the_json_schema_raise_only_scenario_errors(doc):
    accepts(lambda: scenario_from_dict(doc, name="fuzz", header=HEADER))
    accepts(lambda: load_scenario_text(toml_document(doc), "fuzz"))


# --- hostile TOML text ------------------------------------------------------------------------------------


@st.composite
def hostile_texts(draw) -> str:
    lines = VALID.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        edit = draw(st.sampled_from(["value", "insert", "unicode", "truncate"]))
        if edit == "value" and " = " in lines[i]:
            lines[i] = lines[i].split(" = ")[0] + " = " + draw(st.sampled_from(HOSTILE_LITERALS))
        elif edit == "insert":
            key = draw(st.sampled_from(WORDS).map(lambda w: json.dumps(w) if "." in w or not w else w))
            lines.insert(i, f"{key} = {draw(st.sampled_from(HOSTILE_LITERALS))}")
        elif edit == "unicode":
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(st.text(st.characters(codec="utf-8"), min_size=1, max_size=3)) \
                + lines[i][at:]
        elif edit == "truncate":
            text = "\n".join(lines)
            lines = text[:draw(st.integers(0, len(text)))].splitlines() or [""]
    return "\n".join(lines)


@FUZZ
@given(hostile_texts())
def test_hostile_toml_text_raises_only_scenario_errors(text):
    accepts(lambda: load_scenario_text(text, "fuzz"))
