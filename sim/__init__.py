"""eosim
=====

A deterministic, in-process simulator of Apache Kafka's exactly-once machinery. This module is the
public API (docs/api.md); every other module is private by name (``eosim._broker``,
``eosim._client.producer``, ...) except the pure state machines in ``eosim.models``.

The names load lazily (PEP 562): ``import eosim`` and ``import eosim.models`` stay free of SimPy
and of the runtime until a name that needs them is used.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING, Any as _Any

# public name -> the private module that defines it (one place each)
_EXPORTS: dict[str, str] = {
    # the simulation builder, its final-state readers and its checkers
    "Simulation": "eosim._simulation",
    "PartitionObservation": "eosim._observation",
    "UsageError": "eosim._client.handle",
    # confluent-kafka's client API, simulated
    "Producer": "eosim._simulation",
    "Consumer": "eosim._simulation",
    "Message": "eosim._client.message",
    "TopicPartition": "eosim._client.message",
    "ConsumerGroupMetadata": "eosim._client.message",
    "OFFSET_BEGINNING": "eosim._client.message",
    "OFFSET_END": "eosim._client.message",
    "OFFSET_STORED": "eosim._client.message",
    "OFFSET_INVALID": "eosim._client.message",
    "TIMESTAMP_NOT_AVAILABLE": "eosim._client.message",
    "TIMESTAMP_CREATE_TIME": "eosim._client.message",
    "KafkaError": "eosim._client.errors",
    "KafkaException": "eosim._client.errors",
    "ConfigError": "eosim._client.config",
    # faults
    "Fault": "eosim._scenario",
    "Nemesis": "eosim._scenario",
    # checkers
    "CheckResult": "eosim._checkers",
    "Anomaly": "eosim._checkers",
    "check_history": "eosim._checkers",
    "check_trace": "eosim._checkers",
    # scenarios
    "Scenario": "eosim._scenario",
    "ScenarioError": "eosim._scenario",
    "load_scenario": "eosim._scenario",
    "run_scenario": "eosim._runner",
    "Outcome": "eosim._runner",
    "TraceNotKept": "eosim._trace",
    "Verdict": "eosim._verdict",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if _TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load on first use
    from eosim._checkers import Anomaly, CheckResult, check_history, check_trace
    from eosim._client.config import ConfigError
    from eosim._client.errors import KafkaError, KafkaException
    from eosim._client.message import (
        OFFSET_BEGINNING,
        OFFSET_END,
        OFFSET_INVALID,
        OFFSET_STORED,
        TIMESTAMP_CREATE_TIME,
        TIMESTAMP_NOT_AVAILABLE,
        ConsumerGroupMetadata,
        Message,
        TopicPartition,
    )
    from eosim._runner import Outcome, run_scenario
    from eosim._scenario import Fault, Nemesis, Scenario, ScenarioError, load_scenario
    from eosim._client.handle import UsageError
    from eosim._observation import PartitionObservation
    from eosim._simulation import Consumer, Producer, Simulation
    from eosim._trace import TraceNotKept
    from eosim._verdict import Verdict

    __version__: str


def __getattr__(name: str) -> _Any:
    if name == "__version__":
        from importlib.metadata import version

        globals()[name] = version("eosim")
    elif name in _EXPORTS:
        _publish(_EXPORTS[name])
    else:
        raise AttributeError(f"module 'eosim' has no attribute {name!r}")
    return globals()[name]  # later look-ups skip this function


def _publish(module_name: str) -> None:
    """Bind every name ``module_name`` exports, all at once. A class that declares no annotations of
    its own is renamed ``eosim.X`` (reprs, help(), tracebacks; pickle finds ``eosim.X``, the same
    class). An annotated one (the attrs value classes) keeps its module: ``typing.get_type_hints``
    resolves a class's annotations in the globals of its ``__module__``, and the scenario loader and
    users' tools rely on it; their reprs are ``Name(...)`` anyway."""
    module = _importlib.import_module(module_name)
    for name, home in _EXPORTS.items():
        if home == module_name:
            value = getattr(module, name)
            if isinstance(value, type) and "__annotations__" not in vars(value):
                value.__module__ = __name__
            globals()[name] = value


def __dir__() -> list[str]:
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})


del annotations  # the __future__ feature's binding: not part of the API
