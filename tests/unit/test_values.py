"""``eosim.models.values.frozen``: attrs' frozen classes with an ``__init__`` that sets the slots through their
descriptors. The instances must be what attrs' own ``__init__`` builds, and as immutable."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import attrs
import pytest
from attrs import Factory, field

import eosim.models
from eosim import _trace
from eosim.models import values
from eosim.models.records import LogBatch, Record, TopicPartition


def _pair(body: dict, **kwargs):
    """The same class body under attrs' frozen and under eosim's."""
    plain = attrs.frozen(type("Value", (), dict(body)), **kwargs)
    fast = values.frozen(type("Value", (), dict(body)), **kwargs)
    return plain, fast


BODY = {
    "__annotations__": {"a": "int", "_b": "list", "c": "tuple", "d": "int"},
    "a": field(),
    "_b": Factory(list),
    "c": field(default=[3, 1], converter=tuple),
    "d": field(default=7, kw_only=True),
}


@pytest.mark.parametrize("args,kwargs", [((1,), {}), ((1, [2], (5, 4)), {"d": 0}), ((), {"a": 1, "b": [], "d": 2})])
def test_an_instance_is_the_one_attrs_builds(args, kwargs):
    plain, fast = _pair(BODY)
    assert fast.__init__ is not plain.__init__ and fast.__init__.__code__.co_filename.startswith("<eosim")
    one, other = plain(*args, **kwargs), fast(*args, **kwargs)
    assert repr(one) == repr(other) and attrs.asdict(one) == attrs.asdict(other)
    assert str(inspect.signature(plain)) == str(inspect.signature(fast))
    assert attrs.evolve(other, a=9) == fast(9, *args[1:], **{k: v for k, v in kwargs.items() if k != "a"})
    made = fast.make(*args, **kwargs)  # the class call as a plain function: the same instance
    assert type(made) is fast and repr(made) == repr(other) and made == other
    assert inspect.signature(fast.make).parameters == inspect.signature(fast).parameters


def test_a_factory_default_is_fresh_per_instance():
    _, fast = _pair(BODY)
    assert fast(1)._b is not fast(1)._b
    assert fast.make(1)._b is not fast.make(1)._b


def test_a_wrong_call_fails_as_attrs_does():
    plain, fast = _pair(BODY)
    for cls in (plain, fast, fast.make):
        with pytest.raises(TypeError, match="missing 1 required positional argument: 'a'"):
            cls()
        with pytest.raises(TypeError, match="unexpected keyword argument 'e'"):
            cls(1, e=2)


def test_an_instance_stays_immutable():
    _, fast = _pair(BODY)
    value = fast(1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        value.a = 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del value.a
    with pytest.raises(AttributeError):
        value.e = 1  # slotted: no other attribute either
    assert value.a == 1


def test_a_class_whose_init_does_more_keeps_attrs_init():
    validated, fast = _pair({"__annotations__": {"a": "int"}, "a": field(validator=attrs.validators.gt(0))})
    with pytest.raises(ValueError):
        fast(0)
    assert fast.__init__.__code__.co_filename == validated.__init__.__code__.co_filename
    hooked = values.frozen(type("Hooked", (), {"__annotations__": {"a": "int"},
                                               "__attrs_post_init__": lambda self: None}))
    assert not hooked.__init__.__code__.co_filename.startswith("<eosim")
    assert fast.make is fast and hooked.make is hooked  # their make is the class itself (not a base class's)


def test_the_hot_values_and_every_trace_event_kind_are_built_fast():
    for cls in (*_trace.KINDS.values(), LogBatch, Record):
        assert cls.__init__.__code__.co_filename.startswith("<eosim"), cls
    assert TopicPartition(topic="t", partition=0) == TopicPartition("t", 0)  # validated: attrs' own __init__
    with pytest.raises(ValueError):
        TopicPartition("t", -1)


def test_every_frozen_model_class_builds_as_attrs_would():
    """Each model class given the fast ``__init__`` has attrs' signature (names, defaults, keyword-only)."""
    checked = 0
    for info in pkgutil.iter_modules(eosim.models.__path__):
        module = importlib.import_module(f"eosim.models.{info.name}")
        for cls in vars(module).values():
            if (isinstance(cls, type) and cls.__module__ == module.__name__ and attrs.has(cls)
                    and cls.__init__.__code__.co_filename.startswith("<eosim")):
                rebuilt = attrs.make_class(cls.__name__, {f.name: attrs.field(default=f.default, kw_only=f.kw_only,
                                                                              alias=f.alias)
                                                          for f in attrs.fields(cls)}, frozen=True)
                assert _parameters(cls) == _parameters(rebuilt) == _parameters(cls.make), cls
                checked += 1
    assert checked > 50


def _parameters(cls: type) -> list[tuple]:
    return [(p.name, p.kind, p.default) for p in inspect.signature(cls).parameters.values()]


@pytest.mark.parametrize("make", [field(), lambda self: None])
def test_a_class_with_its_own_make_is_refused(make):
    """``make`` is the plain constructor every frozen value gets: a field or method of that name is an error, not
    silently replaced."""
    body = {"__annotations__": {"a": "int"}, "a": field(), "make": make}
    if not callable(make):
        body["__annotations__"]["make"] = "int"
    with pytest.raises(TypeError, match="'make'"):
        values.frozen(type("Value", (), body))
