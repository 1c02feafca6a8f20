"""The public facade: everything public lives in ``eosim.*`` (an explicit ``__all__``), loads lazily,
and keeps ``import eosim`` free of SimPy (docs/api.md)."""

import json
import subprocess
import sys

import pytest

import eosim


def test_every_public_name_resolves() -> None:
    for name in eosim.__all__:
        assert getattr(eosim, name) is not None, name


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        eosim.Nope  # noqa: B018


def test_public_names_are_not_private_modules() -> None:
    assert all(not name.startswith("_") or name == "__version__" for name in eosim.__all__)


def test_import_eosim_is_light() -> None:
    code = "import sys, eosim; bad = sorted(m for m in sys.modules if m == 'simpy' or m.startswith('eosim.')); " \
           "print(bad); sys.exit(1 if bad else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the Simulation builder ------------------------------------------------------------------------------

from eosim import (  # noqa: E402
    Consumer,
    Fault,
    KafkaException,
    Producer,
    Simulation,
    TopicPartition,
    UsageError,
)


def test_clients_need_an_active_simulation():
    with pytest.raises(UsageError, match=r"joins the active Simulation.*with sim:"):
        Producer({})
    sim = Simulation(topics={"t": 1})
    with sim:
        assert Producer({}).name == "producer#1"
    with pytest.raises(UsageError):
        Consumer({"group.id": "g"})  # the with block is over


def test_time_is_integer_milliseconds():
    sim = Simulation(topics={"t": 1})
    with pytest.raises(TypeError, match="integer milliseconds"):
        sim.run(1.5)
    with pytest.raises(ValueError, match=">= 0"):
        sim.run(-1)
    sim.run(250)
    assert sim.now == 250


def test_process_wants_a_generator():
    sim = Simulation(topics={"t": 1})

    def loop():
        yield sim.sleep(1)

    with pytest.raises(TypeError, match=r"such as loop\(\)"):
        sim.process(loop)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"topics": {"t": 0}}, r"topics\[0\]\.partitions: must be >= 1"),
    ({"topics": {"bad topic": 1}}, r"topics\[0\]\.name"),
    ({"topics": {"t": 1}, "cluster": {"no.such.property": 1}}, r'cluster\."no.such.property": unknown broker'),
    ({"topics": {"t": 1}, "seed": -1}, "seed must be an integer >= 0"),
])
def test_a_bad_simulation_is_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Simulation(**kwargs)


def test_client_names_nodes_and_incarnations():
    sim = Simulation(topics={"t": 1})
    with sim:
        first, second = Producer({"client.id": "app"}), Producer({"client.id": "app"})
        other = Consumer({"group.id": "g"})
        with pytest.raises(ValueError, match='client.id "a/b" cannot name'):
            Producer({"client.id": "a/b"})
    assert (first.name, second.name, other.name) == ("app#1", "app#2", "consumer#1")
    assert (first._process, second._process) == ("app", "app#2")
    sim.partition([second])  # a client stands for its node
    with pytest.raises(ValueError, match='no node "nope"'):
        sim.partition(["nope"])
    with pytest.raises(TypeError, match="a list of nodes"):
        sim.partition("app")


def _transactions(sim, *, abort_second=False):
    """Two transactions of one value each; the second is aborted when asked."""
    def body():
        producer = Producer({"client.id": "tx", "transactional.id": "tx"})
        yield producer.init_transactions()
        for value in ("one", "two"):
            producer.begin_transaction()
            producer.produce("t", value=value, key=b"k")
            if value == "two" and abort_second:
                yield producer.flush()  # on the broker first, or the abort purges it unsent
                yield producer.abort_transaction()
            else:
                yield producer.commit_transaction()
    return body()


def test_the_final_state_readers():
    sim = Simulation(topics={"t": 1})
    sim.process(_transactions(sim, abort_second=True))

    def commit_offset():
        consumer = Consumer({"group.id": "g", "enable.auto.commit": False})
        yield sim.sleep(3000)
        yield consumer.commit(offsets=[TopicPartition("t", 0, 2)], asynchronous=False)

    sim.process(commit_offset())
    sim.run(5000)
    state = sim.partition_state("t", 0)
    # one, its commit marker, two, its abort marker
    assert (state.high_watermark, state.last_stable_offset) == (4, 4)
    assert state.read_committed == ((0, "k", "one"),)
    assert state.read_uncommitted == ((0, "k", "one"), (2, "k", "two"))
    assert sim.partitions() == [state]
    assert sim.committed("g") == [TopicPartition("t", 0, 2)]
    assert [tp.offset for tp in sim.committed("g")] == [2]
    with pytest.raises(ValueError, match="no partition 3"):
        sim.partition_state("t", 3)


def test_the_history_records_transactions_sends_and_polls():
    sim = Simulation(topics={"t": 1})
    sim.process(_transactions(sim, abort_second=True))

    def plain():
        yield sim.sleep(2000)  # after both transactions
        producer = Producer({"client.id": "plain"})
        producer.produce("t", value=b"raw")
        yield producer.flush()
        consumer = Consumer({"client.id": "reader", "group.id": "g"})
        consumer.assign([TopicPartition("t", 0, 0)])
        yield sim.sleep(2000)
        yield consumer.consume(10, 1.0)

    sim.process(plain())
    sim.run(6000)
    ops = [(op["process"], op["type"], op["f"]) for op in sim.history()]
    assert ops.count(("tx", "ok", "txn")) == 1 and ops.count(("tx", "fail", "txn")) == 1
    assert ("plain", "ok", "send") in ops and ("reader", "ok", "assign") in ops
    send_ok = next(op for op in sim.history() if op["process"] == "plain" and op["type"] == "ok")
    assert send_ok["value"] == [["send", "t-0", [4, "raw"]]]  # after one, two and their markers
    poll = next(op for op in sim.history() if op["process"] == "reader" and op["f"] == "poll" and op["type"] == "ok")
    assert poll["value"] == [["poll", {"t-0": [[0, "one"], [4, "raw"]]}]]  # read_committed: two was aborted
    assert sim.history()[-1]["process"] == "final-reader"
    assert sim.check().valid is True


def test_a_commit_that_fails_is_recorded_as_unknown_and_a_crash_ends_the_transaction():
    sim = Simulation(topics={"t": 1})
    sim.add_fault(Fault(name="lost", action="drop", message="EndTxn", direction="response"))
    outcomes = []

    def body():
        producer = Producer({"client.id": "tx", "transactional.id": "tx"})
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="x")
        try:
            yield producer.commit_transaction(1.0)  # the response is lost: it times out, outcome unknown
        except KafkaException as exc:
            outcomes.append(exc.args[0].name())
        second = Producer({"client.id": "tx2", "transactional.id": "tx2"})
        yield second.init_transactions()
        second.begin_transaction()
        second.produce("t", value="y")
        sim.crash(second)

    sim.process(body())
    sim.run(5000)
    ends = {op["process"]: op["type"] for op in sim.history() if op["f"] == "txn" and op["type"] != "invoke"}
    assert outcomes == ["_TIMED_OUT"] and ends == {"tx": "info", "tx2": "info"}
    assert ("tx2", "info", "crash") in [(op["process"], op["type"], op["f"]) for op in sim.history()]


def test_faults_arm_now_or_at_a_time_and_are_checked_against_the_clients():
    sim = Simulation(topics={"t": 1})
    with sim:
        Producer({"client.id": "app", "transactional.id": "tid"})
    sim.add_fault(Fault(name="later", action="drop", node="app", transactional_id="tid"), at_ms=700)
    with pytest.raises(ValueError, match=r'no producer has transactional.id = "other"'):
        sim.add_fault(Fault(name="x", action="drop", transactional_id="other"))
    with pytest.raises(ValueError, match=r"faults\[1\]\.name.*"):
        sim.add_fault(Fault(name="later", action="drop"))  # names are unique
    with pytest.raises(ValueError, match="after_step is for scenario steps"):
        sim.add_fault(Fault(name="step", action="drop", after_step=1))
    with pytest.raises(ValueError, match=r"at_ms must be >= 0"):
        sim.add_fault(Fault(name="past", action="drop"), at_ms=-5)
    sim.run(1000)
    arms = [(e["t"], e["data"]["rule"]) for e in sim.trace() if e["kind"] == "fault.arm"]
    assert arms == [(700, "later")]


def test_the_same_seed_and_program_give_the_same_trace():
    def one_run():
        sim = Simulation(topics={"t": 3}, seed=11)
        sim.add_fault(Fault(name="slow", action="delay", message="Produce", ms=30, count=2))

        def body():
            producer = Producer({"enable.idempotence": True})
            for i in range(20):
                producer.produce("t", value=f"v{i}")  # null key: the sticky partitioner draws from the seed
                yield sim.sleep(7)
            yield producer.flush()

        sim.process(body())
        sim.run(3000)
        return sim.trace()

    first = one_run()
    assert first == one_run() and len(first) > 50


def test_a_random_nemesis_strikes_the_clients_and_the_run_stays_valid():
    from eosim import Nemesis

    sim = Simulation(topics={"t": 1}, seed=5)

    def body():
        producer = Producer({"client.id": "app", "transactional.id": "app"})
        yield producer.init_transactions()
        for i in range(30):
            producer.begin_transaction()
            producer.produce("t", value=f"v{i}")
            try:
                yield producer.commit_transaction()
            except KafkaException as exc:
                if not exc.args[0].txn_requires_abort():
                    raise
                yield producer.abort_transaction()

    with sim:
        process = sim.process(body())
        with pytest.raises(ValueError, match=r'nemesis\.targets\[0\]: no node "ghost"'):
            sim.start_nemesis(Nemesis(targets=("ghost",)))
    with pytest.raises(ValueError, match="after_step and until_step are for scenario steps"):
        sim.start_nemesis(Nemesis(after_step=2))
    sim.run(1)  # the app's client exists now
    sim.start_nemesis(Nemesis(kinds=("pause", "disconnect", "delay"), interval_ms=300, duration_ms=200))
    with pytest.raises(ValueError, match="one random nemesis"):
        sim.start_nemesis(Nemesis())
    sim.run(6000)
    sim.stop_nemesis()
    sim.run(60_000)
    struck = {e["kind"] for e in sim.trace() if e["node"] == "nemesis" and e["data"].get("rule") == "nemesis"}
    assert {"fault.pause", "fault.disconnect"} & struck
    assert process.triggered and process.ok
    assert sim.check().valid is True


def test_settle_lets_kafka_decide_a_crashed_producers_transaction():
    sim = Simulation(topics={"t": 1})

    def body():
        producer = Producer({"client.id": "app", "transactional.id": "app"})
        yield producer.init_transactions()
        producer.begin_transaction()
        producer.produce("t", value="orphan")
        yield producer.flush()
        sim.crash(producer)  # killed in the middle of its transaction

    sim.process(body())
    sim.run(2000)
    assert sim.check().valid == "unknown"  # still open: Kafka's timeout has not run yet
    assert sim.partition_state("t").last_stable_offset == 0
    sim.settle()
    state = sim.partition_state("t")
    assert state.last_stable_offset == state.high_watermark == 2  # aborted by the transaction timeout
    assert state.read_committed == () and sim.now >= 60_000
    assert sim.check().valid is True


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Fault(name="x", action="dorp"), r'Fault.action: expected one of "drop"'),
    (lambda: Fault(name="x", action="delay", ms=0), "Fault.ms: must be >= 1"),
    (lambda: Fault(name="x", action="drop", message=3), "Fault.message: expected a string"),
    (lambda: eosim.Nemesis(kinds=("explode",)), r"Nemesis.kinds\[0\]: expected one of"),
])
def test_fault_values_check_their_fields_when_built(build, message):
    """What a field alone decides fails where the value is written; what depends on the simulation (the
    action's own fields, topics, clients) fails at add_fault (test_faults_arm_now_or_at_a_time...)."""
    with pytest.raises(ValueError, match=message):
        build()


def test_a_rewind_by_seek_is_not_a_nonmonotonic_poll():
    sim = Simulation(topics={"t": 1})

    def body():
        producer = Producer({})
        for value in ("a", "b", "c"):
            producer.produce("t", value=value)
        yield producer.flush()
        consumer = Consumer({"client.id": "reader", "group.id": "g"})
        consumer.assign([TopicPartition("t", 0, 0)])
        first = yield consumer.consume(10, 1.0)
        consumer.seek(TopicPartition("t", 0, 0))  # read it all again, on purpose
        again = yield consumer.consume(10, 1.0)
        return [m.value() for m in first], [m.value() for m in again]

    process = sim.process(body())
    sim.run(5000)
    assert process.value == ([b"a", b"b", b"c"], [b"a", b"b", b"c"])
    assert ("reader", "info", "seek") in [(op["process"], op["type"], op["f"]) for op in sim.history()]
    assert sim.check().valid is True


@pytest.mark.parametrize("value, message", [
    (123, "a bytes-like object is required, not 'int'"),
    (1.5, "a bytes-like object is required, not 'float'"),
    (["a"], "a bytes-like object is required, not 'list'"),
    (bytearray(b"x"), "argument 2 must be read-only bytes-like object, not bytearray"),
    (memoryview(b"x"), "argument 2 must be read-only bytes-like object, not memoryview"),
])
def test_produce_refuses_what_confluent_kafka_refuses_at_the_call(value, message):
    # confluent-kafka 2.16.1's Producer.produce raises these TypeErrors before anything is queued
    sim = Simulation(topics={"t": 1})
    with sim:
        producer = Producer({})
        with pytest.raises(TypeError) as value_error:
            producer.produce("t", value=value)
        with pytest.raises(TypeError) as key_error:
            producer.produce("t", value="v", key=value)
        with pytest.raises(TypeError, match="argument 1 must be str, not int"):
            producer.produce(1, value="v")
        with pytest.raises(UnicodeEncodeError):
            producer.produce("t", value="\udcff")
    assert str(value_error.value) == message
    assert str(key_error.value) == message.replace("argument 2", "argument 3")
    sim.run(1000)
    assert len(producer) == 0 and sim.partitions()[0].high_watermark == 0
    assert not [op for op in sim.history() if op["f"] == "send"]


def test_bytes_that_are_not_utf8_are_distinct_values_in_the_history_and_trace():
    sim = Simulation(topics={"t": 1})

    def body():
        producer = Producer({})
        producer.produce("t", value=b"\xff", key=b"\xfe")
        producer.produce("t", value="\\xff", key="\\xfe")  # the text backslashreplace used to make of b"\xff"
        producer.produce("t", value=b"ok")  # UTF-8 bytes: the text of the same str
        yield producer.flush()

    sim.process(body())
    sim.run(1000)
    committed = sim.partitions()[0].read_committed
    assert committed == ((0, "\udcfe", "\udcff"), (1, "\\xfe", "\\xff"), (2, None, "ok"))
    assert committed[0][2].encode("utf-8", "surrogateescape") == b"\xff"
    result = sim.check()
    assert result.valid is True, result.anomaly_types
    values = [v for _f, _k, (_o, v) in [m for op in sim.history() if op["f"] == "send" and op["type"] == "ok"
                                         for m in op["value"]]]
    assert values == ["\udcff", "\\xff", "ok"]
    appended = [v for e in sim.trace() if e["kind"] == "log.append" for _o, _k, v in e["data"]["records"]]
    assert "\udcff" in appended and "\\xff" in appended
    assert json.loads(json.dumps(sim.history())) == sim.history()  # JSON keeps them apart too
    assert "\\xff" in sim.diagram()  # pictures show the bytes as escapes, printable


def test_crash_by_client_or_name_or_directly_records_one_crash():
    for how in ("object", "name", "direct"):
        sim = Simulation(topics={"t": 1})

        def body():
            producer = Producer({"client.id": "w", "transactional.id": "tx"})
            yield producer.init_transactions()
            producer.begin_transaction()
            producer.produce("t", value="a")
            yield producer.flush()
            {"object": lambda: sim.crash(producer), "name": lambda: sim.crash("w"), "direct": producer.crash}[how]()
            sim.crash(producer)  # a second crash does nothing
            producer.crash()

        sim.process(body())
        sim.run(1000)
        ops = [(op["process"], op["type"], op["f"]) for op in sim.history() if op["f"] in ("txn", "crash")]
        assert ops == [("w", "invoke", "txn"), ("w", "info", "crash"), ("w", "info", "txn")], how
    with pytest.raises(ValueError, match='no node "nobody"'):
        sim.crash("nobody")
    with pytest.raises(ValueError, match="crash_broker"):
        sim.crash("broker-1")
    with pytest.raises(TypeError, match="crash\\(\\) takes"):
        sim.crash(3)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"topics": ["t"]}, r"Simulation\(topics=...\) is a dict of topic name -> partition count, got \['t'\]"),
    ({"topics": {"t": 1}, "cluster": [("a", 1)]}, r"Simulation\(cluster=...\) is a dict of broker property"),
])
def test_a_simulation_of_the_wrong_shape_is_a_type_error_naming_the_argument(kwargs, message):
    with pytest.raises(TypeError, match=message):
        Simulation(**kwargs)


@pytest.mark.parametrize(("history", "error", "message"), [
    ("x", TypeError, r"check_history\(\) takes a list of op dicts .*got str"),
    ([1], TypeError, r"history\[0\] is not an op dict"),
    ([{"bogus": 1}], ValueError, r'history\[0\] has no "index" field'),
    ([{"index": 0, "type": "done", "f": "send"}], ValueError, r'history\[0\] field "type" must be one of'),
    ([{"index": 0, "type": "ok", "f": "send", "value": "v"}], ValueError, r'field "value" must be a list of micro'),
    ([{"index": 0, "type": "ok", "f": "send", "value": [["send", "t-0", [0, ["a"]]]]}], ValueError,
     r"\[offset, value\] must be"),
    ([{"index": 0, "type": "ok", "f": "poll", "value": [["poll", ["t-0"]]]}], ValueError, r"a poll is"),
])
def test_check_history_names_what_is_wrong_with_a_bad_history(history, error, message):
    with pytest.raises(error, match=message):
        eosim.check_history(history)


def test_the_module_namespace_is_the_api_and_classes_show_their_public_name():
    import pickle
    import typing

    assert not {"Any", "TYPE_CHECKING", "annotations", "importlib"} & set(dir(eosim))
    assert {n for n in dir(eosim) if not n.startswith("__")} == set(eosim.__all__) - {"__version__"}
    assert repr(eosim.Producer) == "<class 'eosim.Producer'>" and eosim.UsageError.__module__ == "eosim"
    assert isinstance(eosim.Verdict, type)
    for name in eosim.__all__:
        value = getattr(eosim, name)
        if isinstance(value, type):
            typing.get_type_hints(value)  # annotations still resolve where the class lives
    values = [eosim.TopicPartition("t", 0, 5), eosim.KafkaException(eosim.KafkaError(1))]
    code = "import pickle, sys; print(repr(pickle.loads(sys.stdin.buffer.read())))"
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(values), capture_output=True, check=True)
    assert out.stdout.decode().strip() == repr(values)  # a fresh process (a study's pool) finds eosim.X


@pytest.mark.parametrize("method", ["unsubscribe", "pause", "resume", "get_watermark_offsets", "list_topics",
                                    "incremental_assign", "incremental_unassign", "offsets_for_times"])
def test_consumer_calls_not_simulated_say_so_by_name(method):
    with Simulation(topics={"t": 1}):
        consumer = Consumer({"group.id": "g"})
    with pytest.raises(NotImplementedError, match=f"Consumer.{method}\\(\\) is not simulated"):
        getattr(consumer, method)(*([] if method == "unsubscribe" else [[TopicPartition("t", 0)]]))


@pytest.mark.parametrize("key", ["error_cb", "stats_cb"])
def test_confluent_kafka_callback_keys_not_simulated_are_refused_by_name(key):
    with Simulation(topics={"t": 1}), pytest.raises(eosim.ConfigError, match=f'"{key}" is a confluent-kafka'):
        Producer({key: print})


def test_the_on_delivery_key_is_the_default_delivery_callback_and_logger_is_accepted():
    import logging

    sim = Simulation(topics={"t": 1})
    default, own = [], []

    def body():
        producer = Producer({"on_delivery": lambda err, msg: default.append(msg.value()),
                             "logger": logging.getLogger("app")})
        Consumer({"group.id": "g", "logger": logging.getLogger("app")})
        producer.produce("t", value="a")
        producer.produce("t", value="b", on_delivery=lambda err, msg: own.append(msg.value()))  # overrides it
        yield producer.flush()

    sim.process(body())
    sim.run(1000)
    assert (default, own) == ([b"a"], [b"b"])
    with sim, pytest.raises(eosim.KafkaException) as refused:
        Producer({"on_delivery": 1})
    assert refused.value.args[0].name() == "_INVALID_ARG"  # confluent-kafka 2.16.1's error
    assert refused.value.args[0].str() == "on_delivery requires a callable object"


def test_a_message_has_no_headers():
    sim = Simulation(topics={"t": 1})
    got = []

    def body():
        producer = Producer({})
        producer.produce("t", value="v", on_delivery=lambda err, msg: got.append(msg))
        yield producer.flush()

    sim.process(body())
    sim.run(1000)
    assert got[0].headers() is None


def test_run_scenario_wants_a_scenario():
    with pytest.raises(TypeError, match="run_scenario\\(\\) takes an eosim.Scenario"):
        eosim.run_scenario("zombie-fencing")
