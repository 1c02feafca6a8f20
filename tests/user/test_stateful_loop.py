"""The example of docs/exploration.md ("Testing your own loop"), run as a test: a user's own
consume-transform-produce loop under eosim.strategies.ConsumeTransformProduceMachine. The correct loop
passes; a planted bug (the input offsets committed by the consumer, outside the transaction) is caught
and shrunk to a handful of steps."""

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from eosim import Consumer, KafkaException, Producer, TopicPartition
from eosim.strategies import ConsumeTransformProduceMachine


def retried(call):
    """``yield from retried(call)``: the call again while its error is retriable."""
    while True:
        try:
            return (yield call())
        except KafkaException as e:
            if not e.args[0].retriable():
                raise


def recover(producer, error):
    """After a failed transaction: abort it (an abortable error), or give the instance up (fatal, e.g.
    fenced: None, and a new instance takes over the transactional.id)."""
    if error.txn_requires_abort():
        try:
            yield from retried(producer.abort_transaction)
            return producer
        except KafkaException as e:
            error = e.args[0]
    if error.fatal():
        return None
    raise KafkaException(error)


def copy_loop(offsets_in_transaction=True):
    """Copy "in" to "out" exactly once (the pipeline check compares values: the identity transform):
    a transaction per batch, the input offsets sent to it, retriable errors retried; on an abortable
    error abort and rewind to the committed offsets; if fenced (fatal), start a new producer instance
    with the same transactional.id and rewind."""
    consumer = Consumer({"client.id": "copier-in", "group.id": "copier", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("in", 0)])
    producer = None
    while True:
        if producer is None:
            producer = Producer({"client.id": "copier-out", "transactional.id": "copier",
                                 "transaction.timeout.ms": 10_000})
            yield from retried(producer.init_transactions)
        msgs = yield consumer.consume(num_messages=5, timeout=0.5)
        if not msgs:
            continue
        try:
            producer.begin_transaction()
            for msg in msgs:
                producer.produce("out", key=msg.key(), value=msg.value())
            positions = consumer.position(consumer.assignment())
            if offsets_in_transaction:
                group = consumer.consumer_group_metadata()
                yield from retried(lambda: producer.send_offsets_to_transaction(positions, group))
            else:
                yield consumer.commit(offsets=positions, asynchronous=False)  # the planted bug
            yield from retried(producer.commit_transaction)
        except KafkaException as e:
            producer = yield from recover(producer, e.args[0])
            for tp in (yield consumer.committed(consumer.assignment())):
                consumer.seek(TopicPartition(tp.topic, tp.partition, max(tp.offset, 0)))


class CorrectCopier(ConsumeTransformProduceMachine):
    CLIENTS = ("copier-in", "copier-out")

    def application(self):
        return copy_loop()


class BuggyCopier(CorrectCopier):
    def application(self):
        return copy_loop(offsets_in_transaction=False)


SETTINGS = settings(max_examples=150, stateful_step_count=10, deadline=None, database=None, derandomize=True,
                    # Stop at the first failure: by default Hypothesis keeps generating for up to 10 s of
                    # wall time after it, so the example it shrinks depended on the machine's speed.
                    report_multiple_bugs=False,
                    suppress_health_check=list(HealthCheck))


def test_the_correct_loop_is_exactly_once():
    run_state_machine_as_test(CorrectCopier, settings=SETTINGS)


def test_offsets_committed_outside_the_transaction_are_caught_and_shrunk():
    with pytest.raises(AssertionError, match="not exactly-once") as failure:
        run_state_machine_as_test(BuggyCopier, settings=SETTINGS)
    # Hypothesis notes the shrunk steps on the error, as Python
    steps = [line for note in getattr(failure.value, "__notes__", ()) for line in note.splitlines()
             if line.startswith("state.") and not line.startswith("state.teardown")]
    # Shrunk from up to 10 steps to a feed and the fault that makes a transaction abort (3 steps here).
    assert 1 <= len(steps) <= 6, steps
    assert any(step.startswith("state.feed(") for step in steps), steps
