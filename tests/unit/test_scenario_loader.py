"""eosim._scenario: every refusal names the file, the location and the reason; valid files load and
round-trip; the reference doc and the JSON Schema agree."""

import json
import re
from pathlib import Path

import attrs
import pytest

from eosim.models.api import API_NAMES, INFRASTRUCTURE_ERRORS, TXN_LOG_APPEND, TXN_LOG_APPEND_ERRORS
from eosim import _scenario as sc
from eosim._client.config import Client, ProducerConfig
from eosim._scenario import (
    OPS,
    Assign,
    ConsumedRecord,
    Produce,
    Record,
    Scenario,
    ScenarioError,
    load_scenario,
    load_scenario_text,
    scenario_from_dict,
    scenario_json_schema,
    scenario_to_dict,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "scenario-format.md"

BASE = """\
# Two producers share a transactional.id; the second fences the first.
#
# (A test fixture: every section is present.)

[scenario]
name = "base"
description = "fencing"
seed = 7
expect_anomalies = ["torn-transaction"]

[cluster]
"transaction.version" = 2

[[topics]]
name = "in"
partitions = 2

[[topics]]
name = "out"

[actors.p1]
kind = "producer"
config = { "transactional.id" = "tx-1" }

[actors.p2]
kind = "producer"
config = { "transactional.id" = "tx-1", "linger.ms" = 0 }

[actors.c1]
kind = "consumer"
config = { "group.id" = "g1", "auto.offset.reset" = "earliest" }

[[steps]]
actor = "p1"
op = "init_transactions"

[[steps]]
actor = "p1"
op = "begin_transaction"

[[steps]]
actor = "p1"
op = "produce"
topic = "out"
partition = 0
key = "k1"
value = "v1"

[[steps]]
actor = "c1"
op = "assign"
partitions = [{ topic = "in", partition = 1, offset = "beginning" }]

[[steps]]
actor = "p2"
op = "init_transactions"
note = "fences p1"

[[steps]]
actor = "p1"
op = "send_offsets_to_transaction"
consumer = "c1"
expect_error = "_FENCED"

[[steps]]
actor = "c1"
op = "consume"
expect_records = [[0, "a", "b"], { offset = 1, value = "x" }, ["in", 1, 2, "c", "d"]]

[[expect.partitions]]
topic = "out"
partition = 0
read_committed = []
read_uncommitted = [[0, "k1", "v1"]]

[[expect.committed]]
group = "g1"
topic = "in"
partition = 1
offset = "none"
"""


def load(text: str = BASE, name: str = "base") -> Scenario:
    return load_scenario_text(text, name)


def mutate(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def refusal(text: str, name: str = "base") -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_scenario_text(text, name)
    err = info.value
    assert str(err) == f"{err.file}: {err.location}: {err.reason}"
    assert err.file == f"<{name}>"
    return err


# --- valid files ------------------------------------------------------------------------------------


def test_the_base_scenario_loads_with_its_header_and_defaults():
    s = load()
    assert s.header == ("Two producers share a transactional.id; the second fences the first.\n\n"
                        "(A test fixture: every section is present.)")
    assert (s.name, s.description, s.seed, s.scenario.conformance) == ("base", "fencing", 7, True)
    assert s.scenario.expect_anomalies == ("torn-transaction",)
    assert s.broker_config.transaction_version == 2
    assert [t.partitions for t in s.topics] == [2, 1]
    assert isinstance(s.actors["p1"].client_config, ProducerConfig)
    assert s.actors["p2"].client_config.linger_ms == 0
    produce = s.steps[2]
    assert produce == Produce(actor="p1", topic="out", partition=0, key="k1", value="v1")
    assert s.steps[3] == Assign(actor="c1", partitions=(s.steps[3].partitions[0],))
    assert s.steps[3].partitions[0].offset == "beginning"
    assert s.steps[6].expect_records == (
        ConsumedRecord(offset=0, key="a", value="b"), ConsumedRecord(offset=1, value="x"),
        ConsumedRecord(topic="in", partition=1, offset=2, key="c", value="d"))
    assert s.expect.partitions[0].read_uncommitted == (Record(offset=0, key="k1", value="v1"),)
    assert s.expect.committed[0].offset == "none"


def test_a_users_file_needs_no_header():
    """The leading comment block is a rule of the library (tests/golden/test_library.py), not of the format."""
    s = load(BASE[BASE.index("[scenario]"):])
    assert s.header == "" and s == attrs.evolve(load(), header="")


def test_a_valid_scenario_round_trips_through_its_document():
    s = load()
    document = scenario_to_dict(s)
    json.dumps(document)  # plain data
    assert scenario_from_dict(document, name="base", header=s.header) == s


ALL_OPS = """\
# Every op once, so a new op cannot go untested.
[scenario]
name = "all-ops"
description = "every op"
conformance = false

[[topics]]
name = "t"
partitions = 2

[actors.p]
kind = "producer"
config = { "transactional.id" = "tx" }

[actors.c]
kind = "consumer"
config = { "group.id" = "g", "enable.auto.commit" = false }

[[steps]]
actor = "p"
op = "init_transactions"
timeout_ms = 5000
[[steps]]
actor = "p"
op = "begin_transaction"
[[steps]]
actor = "p"
op = "produce"
topic = "t"
[[steps]]
actor = "p"
op = "flush"
nowait = true
[[steps]]
actor = "c"
op = "assign"
partitions = [{ topic = "t", partition = 0 }, { topic = "t", partition = 1, offset = 3 }]
[[steps]]
actor = "c"
op = "subscribe"
topics = ["t"]
[[steps]]
actor = "c"
op = "consume"
max_records = 2
timeout_ms = 100
[[steps]]
actor = "p"
op = "send_offsets_to_transaction"
consumer = "c"
offsets = [{ topic = "t", partition = 0, offset = 1 }]
[[steps]]
actor = "p"
op = "commit_transaction"
expect_error = "NONE"
[[steps]]
actor = "p"
op = "abort_transaction"
expect_error = "_STATE"
[[steps]]
actor = "p"
op = "poll"
[[steps]]
actor = "c"
op = "commit"
asynchronous = true
[[steps]]
actor = "c"
op = "position"
expect_offsets = [{ topic = "t", partition = 0, offset = 1 }]
[[steps]]
actor = "c"
op = "committed"
partitions = [{ topic = "t", partition = 1 }]
expect_offsets = [{ topic = "t", partition = 1, offset = "none" }]
[[steps]]
actor = "c"
op = "close"
[[steps]]
actor = "c"
op = "restart"
[[steps]]
actor = "p"
op = "crash"
[[steps]]
actor = "p"
op = "restart"
[[steps]]
actor = "p"
op = "sleep"
ms = 100
[[steps]]
actor = "nemesis"
op = "partition"
nodes = ["p"]
[[steps]]
actor = "nemesis"
op = "clog"
nodes = ["c", "broker-1"]
ms = 50
[[steps]]
actor = "nemesis"
op = "disconnect"
nodes = ["p"]
[[steps]]
actor = "nemesis"
op = "heal"
[[steps]]
actor = "nemesis"
op = "pause"
nodes = ["p"]
ms = 100
[[steps]]
actor = "nemesis"
op = "coordinator_failover"
down_ms = 5
[[steps]]
actor = "nemesis"
op = "crash_broker"
[[steps]]
actor = "nemesis"
op = "restart_broker"
load_ms = 20

[[faults]]
name = "lose-produce-response"
action = "drop"
message = "Produce"
direction = "response"
node = "p"
topic = "t"
partition = 1
transactional_id = "tx"
count = "until-healed"
after_step = 2

[[faults]]
name = "slow-end-txn"
action = "delay"
message = "EndTxn"
ms = 10

[[faults]]
name = "coordinator-loading"
action = "error"
error = "COORDINATOR_LOAD_IN_PROGRESS"
count = 3

[[faults]]
name = "txn-log-below-min-isr"
action = "error"
message = "TxnLogAppend"
node = "broker-1"
transactional_id = "tx"
error = "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
count = 2

[nemesis]
kinds = ["partition", "pause"]
targets = ["p"]
interval_ms = 500
duration_ms = 200
after_step = 1
until_step = 5
"""


def test_a_java_actor_stays_a_conformance_scenario():
    # The conformance suite runs it on the real Java client (sim/_realkafka/java.py).
    s = load_scenario_text(mutate('"linger.ms" = 0', '"eosim.client" = "java"'), "base")
    assert s.scenario.conformance
    assert s.actors["p2"].client_config.eosim_client is Client.JAVA


def test_every_op_loads_and_round_trips():
    s = load(ALL_OPS, "all-ops")
    assert {step.op for step in s.steps} == set(OPS)
    assert scenario_from_dict(scenario_to_dict(s), name="all-ops", header=s.header) == s
    # A keyless produce is fine without conformance; defaults of the blocking calls.
    assert s.steps[2].partition is None and s.steps[10].timeout_ms == 0 and s.steps[6].timeout_ms == 100


def test_the_docs_example_loads():
    example = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.DOTALL).group(1)
    s = load_scenario_text(example, "zombie-fencing")
    assert s.header.startswith("A producer that has been replaced")


def test_load_scenario_reads_a_file_and_names_it(tmp_path):
    path = tmp_path / "base.toml"
    path.write_text(BASE)
    assert load_scenario(path) == load()
    # A user's edited copy under another file name loads: name = stem is a library lint only.
    other = tmp_path / "other.toml"
    other.write_text(BASE)
    assert load_scenario(other) == load()


def test_unreadable_files(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(tmp_path / "missing.toml")
    assert info.value.location == "file" and "cannot read it" in info.value.reason
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"# x\n\xff\xfe")
    with pytest.raises(ScenarioError) as info:
        load_scenario(binary)
    assert info.value.location == "file" and "not UTF-8" in info.value.reason


# --- refusals: file, location and reason -------------------------------------------------------------

STEP_PRODUCE = 'op = "produce"\ntopic = "out"\npartition = 0'
FAULT = '[[faults]]\nname = "f"\naction = "drop"\n'
TXN_LOG = '[[faults]]\nname = "f"\naction = "error"\nmessage = "TxnLogAppend"\nerror = "NOT_ENOUGH_REPLICAS"\n'
NEMESIS_STEP = '[[steps]]\nactor = "nemesis"\nop = "partition"\nnodes = ["p1"]\n'
BROKER_STEP = '[[steps]]\nactor = "nemesis"\nop = "{op}"\n'
CRASH, RESTART = BROKER_STEP.format(op="crash_broker"), BROKER_STEP.format(op="restart_broker")


def faults(tables: str, more: str = "") -> str:
    """BASE without conformance (faults are simulator-only), plus these tables."""
    return mutate("[scenario]\n", "[scenario]\nconformance = false\n") + tables + more

REFUSALS = [
    # TOML
    ("syntax", mutate("[cluster]", "[cluster"), "line 11, column 9", "TOML syntax: Expected ']'"),
    ("syntax at the end", BASE + "x =", "end of document", "TOML syntax: "),
    # unknown keys, missing fields, types
    ("top-level key", BASE + "[stepz]\n", "stepz", 'unknown key; did you mean "steps"?'),
    ("scenario key", mutate("seed = 7", "seeds = 7"), "scenario.seeds", 'did you mean "seed"?'),
    ("expect key", BASE + "[expect]\nfoo = 1\n", "expect.foo", "unknown key"),
    ("record key", mutate("read_committed = []", "read_committed = [{ offst = 1 }]"),
     "expect.partitions[0].read_committed[0].offst", "unknown key"),
    ("missing field", mutate('description = "fencing"\n', ""), "scenario.description", "missing required field"),
    ("missing section", mutate('[scenario]\nname = "base"\ndescription = "fencing"\nseed = 7\n'
                               'expect_anomalies = ["torn-transaction"]\n', ""), "scenario", "missing required field"),
    ("string for int", mutate("seed = 7", 'seed = "7"'), "scenario.seed", "expected an integer, got the string '7'"),
    ("bool for int", mutate("partitions = 2", "partitions = true"), "topics[0].partitions",
     "expected an integer, got the boolean true"),
    ("float for int", mutate("partition = 0\nkey", "partition = 0.0\nkey"), "steps[2].partition",
     "expected an integer, got the float 0.0"),
    ("int for bool", mutate("[scenario]\n", "[scenario]\nconformance = 1\n"), "scenario.conformance",
     "expected true or false, got the integer 1"),
    ("table for array", mutate('expect_anomalies = ["torn-transaction"]', "expect_anomalies = { a = 1 }"),
     "scenario.expect_anomalies", "expected an array, got a table"),
    ("negative", mutate("seed = 7", "seed = -1"), "scenario.seed", "must be >= 0, got -1"),
    # [scenario]
    ("multi-line description", mutate('description = "fencing"', 'description = """a\nb"""'),
     "scenario.description", "must be one line"),
    ("anomaly name", mutate('["torn-transaction"]', '["torn transaction"]'), "scenario.expect_anomalies[0]",
     "expected an anomaly name"),
    ("duplicate anomaly", mutate('["torn-transaction"]', '["x", "x"]'), "scenario.expect_anomalies[1]", "duplicate"),
    # [cluster], [[topics]]
    ("cluster key", mutate('"transaction.version" = 2', '"transaction.versoin" = 2'),
     'cluster."transaction.versoin"', "unknown broker property (supported: "),
    ("cluster spelling", mutate('"transaction.version" = 2', 'transaction_version = 2'),
     'cluster."transaction_version"', "unknown broker property"),
    ("cluster type", mutate('"transaction.version" = 2', '"transaction.version" = "2"'),
     'cluster."transaction.version"', "expected an integer"),
    ("cluster array", mutate('"transaction.version" = 2', '"transaction.version" = [2]'),
     'cluster."transaction.version"', "expected an integer, got an array"),
    ("unknown bug", mutate('"transaction.version" = 2', '"eosim.reintroduce" = ["KAFKA-1"]'),
     'cluster."eosim.reintroduce"', "unknown historical bug 'KAFKA-1' (valid: KAFKA-5494, KAFKA-6119,"),
    ("bug as a string", mutate('"transaction.version" = 2', '"eosim.reintroduce" = "KAFKA-6119"'),
     'cluster."eosim.reintroduce"', "expected an array, got the string 'KAFKA-6119'"),
    ("bug with a Kafka switch", mutate('"transaction.version" = 2', '"eosim.reintroduce" = ["KAFKA-12671"]'),
     'cluster."eosim.reintroduce"', 'set "transaction.partition.verification.enable" = false'),
    ("unknown release", mutate('"transaction.version" = 2', '"eosim.kafka.version" = "4.5.0"'),
     'cluster."eosim.kafka.version"', "Kafka 4.5.0 is not a release the model knows the bugs of (known: 4.0.0, "),
    ("release spelling", mutate('"transaction.version" = 2', '"eosim.kafka.version" = "4.1"'),
     'cluster."eosim.kafka.version"', "'4.1' is not a Kafka release (MAJOR.MINOR.PATCH"),
    ("release as a number", mutate('"transaction.version" = 2', '"eosim.kafka.version" = 4.1'),
     'cluster."eosim.kafka.version"', "expected a string, got the float 4.1"),
    ("duplicate topic", mutate('name = "out"', 'name = "in"'), "topics[1].name", "duplicate 'in'"),
    ("internal topic", mutate('name = "out"', 'name = "__consumer_offsets"'), "topics[1].name",
     "not a topic a scenario may create"),
    ("topic name", mutate('name = "out"', 'name = "o/ut"'), "topics[1].name", "Kafka's Topic.java"),
    ("zero partitions", mutate("partitions = 2", "partitions = 0"), "topics[0].partitions", "must be >= 1"),
    # [actors]
    ("actor kind", mutate('kind = "consumer"', 'kind = "admin"'), "actors.c1.kind",
     'expected one of "producer", "consumer"'),
    ("actor name", mutate("[actors.c1]", '[actors."c 1"]'), 'actors."c 1"', "an actor name is a letter"),
    ("config key", mutate('"linger.ms" = 0', '"foo" = 0'), 'actors.p2.config."foo"',
     'No such configuration property: "foo"'),
    ("config value", mutate('"linger.ms" = 0', '"linger.ms" = "soon"'), 'actors.p2.config."linger.ms"',
     'Invalid value for configuration property "linger.ms"'),
    ("config array", mutate('"linger.ms" = 0', '"linger.ms" = [0]'), 'actors.p2.config."linger.ms"',
     "expected a string or an integer or a number or true or false, got an array"),
    ("config conflict", mutate('"linger.ms" = 0', '"enable.idempotence" = false'),
     'actors.p2.config."enable.idempotence"', "`transactional.id` requires `enable.idempotence=true`"),
    ("other kind's key", mutate('"linger.ms" = 0', '"group.id" = "g"'), 'actors.p2.config."group.id"',
     "is a consumer property"),
    ("consumer without group", mutate('"group.id" = "g1", ', ""), "actors.c1.config", "group.id must be set"),
    ("bootstrap", mutate('"linger.ms" = 0', '"bootstrap.servers" = "b:9092"'), 'actors.p2.config."bootstrap.servers"',
     "set by the runner"),
    ("bootstrap alias", mutate('"linger.ms" = 0', '"metadata.broker.list" = "b:9092"'),
     'actors.p2.config."metadata.broker.list"', "set by the runner"),
    ("unknown client", faults("").replace('"linger.ms" = 0', '"eosim.client" = "jvm"'),
     'actors.p2.config."eosim.client"', 'Invalid value "jvm" for configuration property "eosim.client"'),
    # [[steps]]
    ("no steps", BASE[:BASE.index("[[steps]]")], "steps", "missing required field"),
    ("empty steps", mutate("[scenario]", "steps = []\n[scenario]", BASE[:BASE.index("[[steps]]")]), "steps",
     "must not be empty"),
    ("no op", mutate('op = "begin_transaction"\n', ""), "steps[1].op", "missing required field"),
    ("unknown op", mutate('op = "begin_transaction"', 'op = "begin"'), "steps[1].op", 'unknown op "begin"'),
    ("op type", mutate('op = "begin_transaction"', "op = 3"), "steps[1].op", "unknown op the integer 3"),
    # str() of a 20,000-bit (hex) integer raises ValueError: found by experiments/fuzz_cli.py (seed 1, input 4904).
    ("op huge integer", mutate('op = "begin_transaction"', "op = 0x" + "f" * 5000), "steps[1].op", "unknown op"),
    ("step key", mutate(STEP_PRODUCE, STEP_PRODUCE.replace("partition", "partiton")), "steps[2].partiton",
     'did you mean "partition"?'),
    ("key of another op", mutate('op = "begin_transaction"', 'op = "begin_transaction"\ntopic = "out"'),
     "steps[1].topic", "allowed here: actor, expect_error, nowait, note)"),
    ("step missing field", mutate(STEP_PRODUCE, 'op = "produce"\npartition = 0'), "steps[2].topic",
     "missing required field"),
    ("unknown actor", mutate('actor = "p2"', 'actor = "p3"'), "steps[4].actor",
     'no actor "p3" in [actors] (p1, p2, c1)'),
    ("op for the other kind", mutate('actor = "c1"\nop = "consume"', 'actor = "p1"\nop = "consume"'), "steps[6].op",
     'op "consume" is for a consumer, but "p1" is a producer'),
    ("unknown topic", mutate(STEP_PRODUCE, STEP_PRODUCE.replace('"out"', '"nope"')), "steps[2].topic",
     'no topic "nope" in [[topics]] (in, out)'),
    ("partition range", mutate(STEP_PRODUCE, STEP_PRODUCE.replace("= 0", "= 1")), "steps[2].partition",
     'partition 1 is out of range: topic "out" has 1 partition (0..0)'),
    ("negative partition", mutate(STEP_PRODUCE, STEP_PRODUCE.replace("= 0", "= -1")), "steps[2].partition",
     "must be >= 0"),
    ("keyless on many partitions", mutate(STEP_PRODUCE + '\nkey = "k1"', 'op = "produce"\ntopic = "in"'),
     "steps[2].partition", "random partition"),
    ("consumer reference", mutate('consumer = "c1"', 'consumer = "p2"'), "steps[5].consumer",
     'no consumer actor "p2" (c1)'),
    ("assignment entry", mutate('offset = "beginning"', 'offset = "start"'), "steps[3].partitions[0].offset",
     'expected an integer or one of "beginning", "end", "stored"'),
    ("assignment range", mutate("partition = 1, offset", "partition = 2, offset"), "steps[3].partitions[0].partition",
     'topic "in" has 2 partitions (0..1)'),
    ("expect_error", mutate('expect_error = "_FENCED"', 'expect_error = "fenced"'), "steps[5].expect_error",
     'expected "NONE" or an error name'),
    ("record arity", mutate('[[0, "a", "b"],', '[[0, "a"],'), "steps[6].expect_records[0]",
     "expected an array of 3 or 5 items"),
    ("record halves", mutate('{ offset = 1, value = "x" }', '{ offset = 1, topic = "in" }'),
     "steps[6].expect_records[1]", "give both topic and partition, or neither"),
    ("record topic", mutate('["in", 1, 2, "c", "d"]', '["nope", 1, 2, "c", "d"]'), "steps[6].expect_records[2].topic",
     'no topic "nope"'),
    ("after a crash", mutate('note = "fences p1"', 'note = "fences p1"\n\n[[steps]]\nactor = "p1"\nop = "crash"'),
     "steps[6].op", '"p1" was stopped at steps[5]: only restart may follow'),
    ("restart a running actor", mutate('op = "begin_transaction"', 'op = "restart"'), "steps[1].op",
     '"p1" is running: close or crash it before a restart'),
    # [[faults]], [nemesis] and nemesis steps
    ("drop without message on conformance", BASE + FAULT, "faults[0]",
     "the conformance suite's proxy cannot do this rule (a drop needs message (the proxy drops messages of one "
     "API)): set scenario.conformance = false"),
    ("delay on conformance", BASE + FAULT.replace('"drop"', '"delay"') + 'message = "Produce"\nms = 5\n', "faults[0]",
     'action = "delay": the proxy only drops messages'),
    ("broker-to-broker drop on conformance", BASE + FAULT + 'message = "WriteTxnMarkers"\n', "faults[0]",
     "the simulator sends AddPartitionsToTxn and WriteTxnMarkers broker to broker too"),
    ("selected drop on conformance", BASE + FAULT + 'message = "Produce"\nnode = "p1"\n', "faults[0]",
     "node: the proxy selects by message, direction and count only, armed from the start"),
    ("late drop on conformance", BASE + FAULT + 'message = "Produce"\nafter_step = 1\n', "faults[0]",
     "after_step: the proxy selects"),
    ("healed drop on conformance", BASE + FAULT + 'message = "Produce"\ncount = "until-healed"\n', "faults[0]",
     "the proxy has no heal"),
    ("second rule on conformance", BASE + FAULT + 'message = "Produce"\n' + FAULT.replace('"f"', '"g"'),
     "faults[1]", "a drop needs message"),
    ("fault action", faults(FAULT.replace('"drop"', '"explode"')), "faults[0].action", 'expected one of "drop"'),
    ("fault name", faults(FAULT.replace('"f"', '"nemesis"')), "faults[0].name", "the random nemesis"),
    ("duplicate fault", faults(FAULT + FAULT), "faults[1].name", "duplicate 'f'"),
    ("fault message", faults(FAULT + 'message = "Produse"\n'), "faults[0].message", 'no API "Produse" (APIs: '),
    ("fault node", faults(FAULT + 'node = "p9"\n'), "faults[0].node", 'no node "p9" (nodes: p1, p2, c1, broker-1)'),
    ("fault partition alone", faults(FAULT + "partition = 0\n"), "faults[0].partition", "give the topic too"),
    ("fault topic", faults(FAULT + 'topic = "nope"\n'), "faults[0].topic", 'no topic "nope"'),
    ("fault partition range", faults(FAULT + 'topic = "out"\npartition = 1\n'), "faults[0].partition",
     "out of range"),
    ("fault transactional.id", faults(FAULT + 'transactional_id = "tx-9"\n'), "faults[0].transactional_id",
     'no producer has transactional.id = "tx-9"'),
    ("delay without ms", faults(FAULT.replace('"drop"', '"delay"')), "faults[0].ms", "a delay needs ms"),
    ("ms of a drop", faults(FAULT + "ms = 5\n"), "faults[0].ms", "only a delay takes ms"),
    ("error without error", faults(FAULT.replace('"drop"', '"error"')), "faults[0].error", "needs error"),
    ("error of a drop", faults(FAULT + 'error = "NOT_COORDINATOR"\n'), "faults[0].error", "only the error action"),
    ("unknown error", faults(FAULT.replace('"drop"', '"error"') + 'error = "NOPE"\n'), "faults[0].error",
     'no Kafka error "NOPE"'),
    ("error the API never gives", faults(FAULT.replace('"drop"', '"error"') + 'error = "REQUEST_TIMED_OUT"\n'
                                         'message = "Fetch"\n'), "faults[0].error",
     "does not answer a Fetch request with REQUEST_TIMED_OUT"),
    ("error on responses", faults(FAULT.replace('"drop"', '"error"') + 'error = "NOT_COORDINATOR"\n'
                                  'direction = "response"\n'), "faults[0].direction", "not responses"),
    ("txn-log append dropped", faults(FAULT + 'message = "TxnLogAppend"\n'), "faults[0].action",
     'a TxnLogAppend can only fail: action = "error"'),
    ("txn-log append direction", faults(TXN_LOG + 'direction = "request"\n'), "faults[0].direction",
     "a TxnLogAppend is neither a request nor a response"),
    ("txn-log append topic", faults(TXN_LOG + 'topic = "out"\n'), "faults[0].topic",
     "a TxnLogAppend writes __transaction_state: select it by transactional_id"),
    ("txn-log append on a client", faults(TXN_LOG + 'node = "p1"\n'), "faults[0].node",
     "the transaction coordinator appends on broker-1, not on p1"),
    ("txn-log append error", faults(TXN_LOG.replace("NOT_ENOUGH_REPLICAS", "NOT_COORDINATOR")), "faults[0].error",
     "does not fail an append to __transaction_state with NOT_COORDINATOR for a reason the simulator leaves out "
     "(injectable: NOT_ENOUGH_REPLICAS, NOT_ENOUGH_REPLICAS_AFTER_APPEND)"),
    ("fault count", faults(FAULT + "count = 0\n"), "faults[0].count", "must be >= 1"),
    ("fault count word", faults(FAULT + 'count = "forever"\n'), "faults[0].count",
     'expected an integer or one of "until-healed"'),
    ("fault step", faults(FAULT + "after_step = 7\n"), "faults[0].after_step", "no step 7: the steps are 0..6"),
    ("nemesis on conformance", BASE + "[nemesis]\n", "nemesis", "simulator-only"),
    ("nemesis kind", faults("", '[nemesis]\nkinds = ["flood"]\n'), "nemesis.kinds[0]", 'expected one of "partition"'),
    ("nemesis target", faults("", '[nemesis]\ntargets = ["broker-1"]\n'), "nemesis.targets[0]",
     'no node "broker-1" (nodes: p1, p2, c1)'),
    ("nemesis window", faults("", "[nemesis]\nafter_step = 3\nuntil_step = 3\n"), "nemesis.until_step",
     "must come after after_step (3)"),
    ("reserved actor", mutate("[actors.c1]", "[actors.nemesis]"), "actors.nemesis", "reserved"),
    ("nemesis op of an actor", mutate('op = "begin_transaction"', 'op = "heal"'), "steps[1].op",
     'op "heal" is for a nemesis, but "p1" is a producer'),
    ("actor op of the nemesis", mutate('actor = "p1"\nop = "begin_transaction"', 'actor = "nemesis"\nop = "flush"'),
     "steps[1].op", 'op "flush" is for a producer, not the nemesis'),
    ("network op on conformance", BASE + NEMESIS_STEP, "steps[7].op", '"partition" is simulator-only'),
    ("nemesis node", faults("", NEMESIS_STEP.replace('"p1"', '"p9"')), "steps[7].nodes[0]", 'no node "p9"'),
    ("pausing the broker", faults("", NEMESIS_STEP.replace('"partition"', '"pause"\nms = 5').replace('"p1"',
                                                                                                 '"broker-1"')),
     "steps[7].nodes[0]", 'no node "broker-1" (nodes: p1, p2, c1)'),
    ("nemesis nowait", faults("", NEMESIS_STEP + "nowait = true\n"), "steps[7].nowait", "takes effect at once"),
    ("broker op on conformance", BASE + CRASH, "steps[7].op", '"crash_broker" is simulator-only'),
    ("broker left down", faults("", CRASH), "steps[7]", "broker-1 stays down: restart it"),
    ("crash a crashed broker", faults("", CRASH + CRASH + RESTART), "steps[8].op",
     "broker-1 was crashed at steps[7]: only restart_broker may follow"),
    ("failover of a crashed broker", faults("", CRASH + BROKER_STEP.format(op="coordinator_failover") + RESTART),
     "steps[8].op", "only restart_broker may follow"),
    ("restart a running broker", faults("", RESTART), "steps[7].op", "broker-1 is running: crash_broker before"),
    ("load time", faults("", CRASH + RESTART + "load_ms = -1\n"), "steps[8].load_ms", "must be >= 0"),
    # [expect]
    ("duplicate partition expectation",
     BASE + '[[expect.partitions]]\ntopic = "out"\npartition = 0\nhigh_watermark = 1\n',
     "expect.partitions[1]", "out-0 is already expected above"),
    ("empty partition expectation", mutate('read_committed = []\nread_uncommitted = [[0, "k1", "v1"]]\n', ""),
     "expect.partitions[0]", "expects nothing"),
    ("expected partition range", mutate("partition = 0\nread_committed", "partition = 5\nread_committed"),
     "expect.partitions[0].partition", "out of range"),
    ("unknown group", mutate('group = "g1"', 'group = "g2"'), "expect.committed[0].group",
     'no consumer actor has group.id = "g2"'),
    ("committed offset", mutate('offset = "none"', 'offset = "nope"'), "expect.committed[0].offset",
     'expected an integer or one of "none"'),
]


@pytest.mark.parametrize("text, location, reason", [case[1:] for case in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_refusals_name_the_location_and_the_reason(text, location, reason):
    err = refusal(text)
    assert err.location == location
    assert reason in err.reason


def test_drops_the_proxy_reproduces_keep_conformance():
    """On Kafka a proxy drops the first count messages of one API (sim/_realkafka/proxy.py): such rules may
    stay in a conformance scenario."""
    s = load_scenario_text(BASE + FAULT + 'message = "Produce"\ndirection = "response"\ncount = 2\n'
                           + FAULT.replace('"f"', '"g"') + 'message = "EndTxn"\n', "base")
    assert s.scenario.conformance
    assert [(f.message, f.direction, f.count) for f in s.faults] == [("Produce", "response", 2), ("EndTxn", None, 1)]


def test_a_document_that_is_not_a_table():
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict([1], name="x", header="h", file="f.toml")
    assert str(info.value) == "f.toml: document: expected a table, got an array"


def test_non_string_keys_from_python_documents():
    document = scenario_to_dict(load())
    document["cluster"] = {1: 2}
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(document, name="base", header="h")
    assert (info.value.location, info.value.reason) == ("cluster", "keys are strings, got the integer 1")


# --- the reference doc and the JSON Schema ------------------------------------------------------------


def _schema_objects(schema) -> dict[str, dict]:
    """Every titled object of the schema, by title."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "object" and "title" in node:
                found[node["title"]] = node
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return found


def _doc_tables() -> dict[str, dict[str, bool]]:
    """Heading (without # and backticks) -> {field: required} from the first table under it."""
    tables: dict[str, dict[str, bool]] = {}
    heading = None
    in_code = False
    for line in DOC.read_text().splitlines():
        in_code ^= line.startswith("```")
        if in_code:
            continue
        if line.startswith("#"):
            heading = line.lstrip("#").strip().replace("`", "")
            tables[heading] = {}
        elif heading and (m := re.match(r"\| `(\w+)` \|[^|]*\| ([^|]*) \|", line)):
            tables[heading][m.group(1)] = m.group(2).strip() == "required"
    return tables


def test_docs_field_tables_match_the_json_schema():
    objects = _schema_objects(scenario_json_schema())
    tables = _doc_tables()
    step_titles = [t for t in objects if t.startswith("op = ")]
    assert sorted(step_titles) == sorted(f'op = "{op}"' for op in OPS)
    common = set.intersection(*(set(objects[t]["properties"]) for t in step_titles)) - {"op"}
    assert set(tables["[[steps]]"]) == common
    assert [f for f, required in tables["[[steps]]"].items() if required] == ["actor"]
    for title, obj in objects.items():
        assert title in tables, f"docs/scenario-format.md has no section for {title}"
        own = set(obj["properties"]) - (common | {"op"} if title in step_titles else set())
        documented = tables[title]
        assert set(documented) == own, title
        assert {f for f, required in documented.items() if required} == set(obj["required"]) - {"op", "actor"}, title


def test_docs_fault_rows_name_every_message_and_injectable_error():
    """The [[faults]] rows list what the loader takes: every API and TxnLogAppend, every injectable error."""
    section = DOC.read_text().split("### `[[faults]]`")[1].split("\n### ")[0]
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(message|error)` \|(.*)$", section, re.M)}
    assert set(re.findall(r"`([A-Z][a-zA-Z]+)`", rows["message"])) == {*API_NAMES, TXN_LOG_APPEND}
    errors = {e.name for table in (*INFRASTRUCTURE_ERRORS.values(), TXN_LOG_APPEND_ERRORS) for e in table}
    assert set(re.findall(r"`([A-Z_]+)`", rows["error"])) == errors
    fault = _schema_objects(scenario_json_schema())["[[faults]]"]
    assert TXN_LOG_APPEND in fault["properties"]["message"]["description"]


def test_the_json_schema_is_valid_and_accepts_what_the_loader_accepts():
    jsonschema = pytest.importorskip("jsonschema")
    schema = scenario_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for text, name in ((BASE, "base"), (ALL_OPS, "all-ops")):
        s = load_scenario_text(text, name)
        jsonschema.validate(scenario_to_dict(s), schema)
    bad = scenario_to_dict(load())
    bad["steps"][0]["partiton"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --- resource limits: each refused at its field with the value and the limit -----------------------------

PAUSE = '[[steps]]\nactor = "nemesis"\nop = "pause"\nnodes = ["p1"]\nms = {ms}\n'
PARTITIONS = '[[topics]]\nname = "t{i}"\npartitions = {n}\n'
ACTOR = '[actors.x{i}]\nkind = "producer"\n'
DROP = '[[faults]]\nname = "f{i}"\naction = "drop"\n'
LIMITS = [
    ("deep nesting", mutate('note = "fences p1"', "note = " + "[" * 5000 + "]" * 5000),
     "line 57, column 107", "nested too deeply"),
    ("5000-digit integer", mutate("seed = 7", "seed = " + "1" * 5000), "line 8, column 8",
     f"an integer of more than {sc.MAX_INT_DIGITS} digits"),
    ("huge hex integer", mutate("seed = 7", "seed = 0x" + "f" * 5000), "scenario.seed",
     "an integer of 20000 bits is out of range: integers are 64-bit"),
    ("65-bit integer", mutate("seed = 7", f"seed = {2**64}"), "scenario.seed",
     f"the integer {2**64} is out of range: integers are 64-bit (-9223372036854775808..9223372036854775807)"),
    ("1e400", mutate("op = \"init_transactions\"\n\n[[steps]]\nactor = \"p1\"\nop = \"begin",
                     "op = \"init_transactions\"\ntimeout_ms = 1e400\n\n[[steps]]\nactor = \"p1\"\nop = \"begin"),
     "steps[0].timeout_ms", "expected an integer, got the float inf"),
    ("nan in a config", mutate('"linger.ms" = 0', '"linger.ms" = nan'), 'actors.p2.config."linger.ms"',
     "expected a finite number, got the float nan"),
    ("inf in the cluster", mutate('"transaction.version" = 2', '"transaction.max.timeout.ms" = -inf'),
     'cluster."transaction.max.timeout.ms"', "expected a finite number, got the float -inf"),
    ("broker range", mutate('"transaction.version" = 2', '"transaction.state.log.num.partitions" = 0'),
     'cluster."transaction.state.log.num.partitions"', "must be in 1..2147483647, got 0"),
    ("transaction.version", mutate('"transaction.version" = 2', '"transaction.version" = 3'),
     'cluster."transaction.version"', "must be in 0..2, got 3"),
    ("dedup window", faults("").replace('"transaction.version" = 2', '"eosim.num.batches.to.retain" = 1001'),
     'cluster."eosim.num.batches.to.retain"', "must be in 1..1000, got 1001"),
    ("pause", faults("", PAUSE.format(ms=10**9)), "steps[7].ms", f"must be <= {sc.MAX_MS}, got 1000000000"),
    ("timeout", mutate('op = "consume"\n', 'op = "consume"\ntimeout_ms = 3600001\n'), "steps[6].timeout_ms",
     "must be <= 3600000, got 3600001"),
    ("delay", faults(DROP.format(i=0).replace('"drop"', '"delay"') + f"ms = {sc.MAX_MS + 1}\n"), "faults[0].ms",
     "must be <= 3600000"),
    ("nemesis interval", faults("[nemesis]\ninterval_ms = 3600001\n"), "nemesis.interval_ms", "must be <= 3600000"),
    ("fault count limit", faults(DROP.format(i=0) + "count = 1000000001\n"), "faults[0].count",
     "must be <= 1000000000"),
    ("partitions of a topic", mutate("partitions = 2", "partitions = 100000000"), "topics[0].partitions",
     f"must be <= {sc.MAX_PARTITIONS}, got 100000000"),
    ("partitions in all", BASE + "".join(PARTITIONS.format(i=i, n=500) for i in range(2)), "topics",
     f"1003 partitions in all, more than the limit of {sc.MAX_PARTITIONS}"),
    ("topics", BASE + "".join(PARTITIONS.format(i=i, n=1) for i in range(sc.MAX_TOPICS)), "topics",
     f"102 items, more than the limit of {sc.MAX_TOPICS}"),
    ("actors", BASE + "".join(ACTOR.format(i=i) for i in range(sc.MAX_ACTORS)), "actors",
     f"103 entries, more than the limit of {sc.MAX_ACTORS}"),
    ("faults", faults("".join(DROP.format(i=i) for i in range(sc.MAX_FAULTS + 1))), "faults",
     f"1001 items, more than the limit of {sc.MAX_FAULTS}"),
    ("a record value", mutate('value = "v1"', f'value = "{"v" * (sc.MAX_STRING + 1)}"'), "steps[2].value",
     f"a string of 10001 characters, more than the limit of {sc.MAX_STRING}"),
    ("a long unknown key is cut short", BASE + "[expect]\n" + "x" * 1000 + " = 1\n",
     'expect."' + "x" * sc.MAX_KEY + '..."', "unknown key"),
]


@pytest.mark.parametrize("text, location, reason", [case[1:] for case in LIMITS], ids=[c[0] for c in LIMITS])
def test_limits_are_refused_with_the_value_and_the_limit(text, location, reason):
    err = refusal(text)
    assert err.location == location
    assert reason in err.reason


def test_arrays_hold_at_most_max_items():
    document = scenario_to_dict(load())
    document["steps"] = document["steps"] * (sc.MAX_ITEMS // len(document["steps"]) + 1)
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(document, name="base", header="h")
    assert info.value.location == "steps"
    assert info.value.reason == f"{len(document['steps'])} items, more than the limit of {sc.MAX_ITEMS}"


def test_a_file_over_the_size_limit_is_not_read(tmp_path):
    big = tmp_path / "base.toml"
    big.write_text(BASE + "#" * sc.MAX_FILE_BYTES)
    with pytest.raises(ScenarioError) as info:
        load_scenario(big)
    assert (info.value.location, info.value.reason) == ("file", f"larger than the limit of {sc.MAX_FILE_BYTES} bytes")


def test_the_json_schema_states_the_limits():
    schema = scenario_json_schema()
    assert schema["properties"]["steps"]["maxItems"] == sc.MAX_ITEMS
    assert schema["properties"]["actors"]["maxProperties"] == sc.MAX_ACTORS
    assert schema["properties"]["faults"]["maxItems"] == sc.MAX_FAULTS
    topic = schema["properties"]["topics"]["items"]["properties"]
    assert topic["partitions"]["maximum"] == sc.MAX_PARTITIONS and topic["name"]["maxLength"] == sc.MAX_STRING
    assert schema["properties"]["scenario"]["properties"]["seed"]["maximum"] == sc.MAX_INT


def test_the_python_api_parts_meet_the_same_limits():
    with pytest.raises(ScenarioError) as info:
        sc.check_parts(topics={"a": 600, "b": 600}, cluster={}, actors={}, what="Simulation")
    assert (info.value.location, info.value.reason) == ("topics", "1200 partitions in all, more than the limit of "
                                                                  f"{sc.MAX_PARTITIONS}")


def test_a_message_is_one_line_whatever_the_value_it_quotes():
    """A value quoted in a reason has its newlines and control or formatting characters escaped, so the CLI's
    message stays one line and a terminal's escape sequences stay text."""
    err = refusal(mutate('actor = "c1"\nop = "assign"', 'actor = "c\\n1\\u001b[31m\\u202e"\nop = "assign"'))
    assert err.location == "steps[3].actor"
    assert err.reason.startswith('no actor "c\\n1\\x1b[31m\\u202e" in [actors]') and str(err).isprintable()


def test_a_scenario_error_survives_pickling_as_process_and_dask_executors_return_it() -> None:
    import pickle

    error = ScenarioError("s.toml", "steps[3].partition", "must be >= 0, got -1")
    back = pickle.loads(pickle.dumps(error))
    assert (type(back), str(back), back.file, back.location, back.reason) == (
        ScenarioError, "s.toml: steps[3].partition: must be >= 0, got -1", "s.toml", "steps[3].partition",
        "must be >= 0, got -1")
