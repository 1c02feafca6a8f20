"""eosim._faults
==========

The fault layer breaks things at precise points, deterministically (docs/faults.md is the reference).
It is the network's ``route``, the single place that decides whether a packet is delivered, delayed or
dropped, the broker's ``inject`` hook, which answers a request with an error instead of the broker's
own answer, and its ``inject_txn_log`` hook, which fails the transaction coordinator's own append to
``__transaction_state`` (the pseudo-API ``TxnLogAppend``). It holds:

- the scenario's ``[[faults]]`` rules (``eosim._scenario.Fault``): a selector in the spirit of kfake's fault
  API (message, node, the request's src and dst nodes, topic/partition, transactional.id, direction), an action (drop, delay,
  disconnect, error), a count (N times, or until healed) and an arming point (the start, a step, or the
  k-th request of an API, anyone's or one node's);
- the links between the nodes, which ``partition`` cuts and ``heal`` restores (a message on a cut link
  is held, and delivered in order after the heal: TCP retransmits it on its live connection);
- clogs (extra latency on a node's links) and pauses (a client's process stops until it wakes);
- the seeded random nemesis of ``[nemesis]``, whose only randomness is ``world.rng("nemesis")``.

Rules are tried in declaration order and the first that matches acts; counts go down in event order.
Every decision emits a ``fault.*`` trace event (node ``nemesis``) that names its rule (a ``[[faults]]``
name, or the nemesis op or mechanism behind it) and, for a packet, its correlation id and message (for a
txn-log append, ``msg = "TxnLogAppend"``, its write id and transactional.id).
A run without faults emits none and routes every packet as the bare network does.
"""

from __future__ import annotations

import functools
from itertools import islice
from random import Random
from typing import Any, Callable, Iterable, Iterator

from attrs import define, evolve, field, frozen

from eosim.models.api import INFRASTRUCTURE_ERRORS, TXN_LOG_APPEND, TXN_LOG_APPEND_ERRORS, api_name, injectable_errors
from eosim.models.errors import Errors
from eosim import _scenario as sc
from eosim.models.txn_coordinator import AppendTxnLog
from eosim._broker import BrokerNode, Injection
from eosim._net import HOLD, Network, Packet
from eosim._replication import CONTROLLER
from eosim._world import World, derive_seed

NEMESIS = "nemesis"  # the node of fault events, the actor of nemesis steps, the random nemesis' rule name
NETWORK_ACTIONS = frozenset({"drop", "delay", "disconnect"})
ERROR_ACTION = frozenset({"error"})
NEMESIS_MAX_COUNT = 3  # a random message fault strikes 1..3 packets


@functools.lru_cache(maxsize=1024)  # a run has a few dozen endpoints, asked twice per packet: a hit is a C call
def node_of(endpoint: str) -> str:
    """The scenario's name for a connection end: ``p1#2/txn`` is ``p1``, ``broker-1/markers`` is ``broker-1``."""
    return endpoint.split("/", 1)[0].split("#", 1)[0]


@frozen
class Facts:
    """What selectors look at in a request (a response is judged by its request's facts)."""

    api: str
    partitions: tuple[tuple[str, int], ...]
    transactional_id: str | None


def facts(request: Any) -> Facts:
    body = getattr(request, "entry", request)  # WriteTxnMarkers carries a TxnMarkerEntry
    partitions = []
    for name in ("batches", "partitions", "offsets"):
        for item in getattr(body, name, ()):
            tp = item[0] if isinstance(item, tuple) else item
            partitions.append((tp.topic, tp.partition))
    return Facts(api=api_name(request), partitions=tuple(partitions),
                 transactional_id=getattr(body, "transactional_id", None))


def selects(rule: sc.Fault, packet: Packet, f: Facts) -> bool:
    """Whether ``rule``'s selector matches ``packet``, whose request has the facts ``f``."""
    if rule.direction is not None and rule.direction != ("response" if packet.is_response else "request"):
        return False
    if rule.node is not None and rule.node not in (node_of(packet.src), node_of(packet.dst)):
        return False
    # src/dst name the request's ends: a response travels from its request's dst back to its src
    if rule.src is not None and rule.src != node_of(packet.dst if packet.is_response else packet.src):
        return False
    if rule.dst is not None and rule.dst != node_of(packet.src if packet.is_response else packet.dst):
        return False
    if rule.message is not None and rule.message != f.api:
        return False
    if rule.topic is not None and not any(t == rule.topic and rule.partition in (None, p) for t, p in f.partitions):
        return False
    if rule.transactional_id is not None and rule.transactional_id != f.transactional_id:
        return False
    # an injected error strikes only the requests whose API can answer it (none for Metadata, FindCoordinator and
    # the brokers' replication traffic)
    return rule.error is None or Errors[rule.error] in INFRASTRUCTURE_ERRORS.get(f.api, ())


@define(eq=False)
class _Armed:
    rule: sc.Fault
    left: int | None  # None: until healed


@define(eq=False)
class FaultLayer:
    world: World
    network: Network
    rules: tuple[sc.Fault, ...] = ()
    nemesis: sc.Nemesis | None = None
    actors: tuple[str, ...] = ()
    brokers: tuple[str, ...] = ()
    broker: BrokerNode | None = None  # the nemesis' broker strikes crash it and fail its coordinator over
    # broker-K's node, for a nemesis striking broker-2 .. broker-N of a replicated cluster (None: one broker)
    node_of: Callable[[str], BrokerNode] | None = None
    _linked: set[str] = field(init=False, factory=set)  # the nodes; all linked but for the cuts
    _cuts: set[tuple[str, str]] = field(init=False, factory=set)  # cut links, both ways
    _armed: list[_Armed] = field(init=False, factory=list)  # in declaration order
    _clogs: dict[str, int] = field(init=False, factory=dict)  # node -> extra latency of its links
    _paused: dict[str, int] = field(init=False, factory=dict)  # actor -> when it wakes
    # API -> requests of it routed so far; (API, node) -> those the node sent
    _sent: dict[Any, int] = field(init=False, factory=dict)
    _calm_at: int = field(init=False, default=0)  # the last delayed packet's arrival
    _nemesis_on: bool = field(init=False, default=False)
    _window: int = field(init=False, default=0)  # the random nemesis' current fault, by number
    _counting: bool = field(init=False, default=False)  # a rule is armed by the k-th request of an API
    _crashed: BrokerNode | None = field(init=False, default=None)  # the broker down by the nemesis' doing

    def __attrs_post_init__(self) -> None:
        self._linked = set(self.nodes)
        self._counting = any(rule.after_message is not None for rule in self.rules)
        self._arm(rule for rule in self.rules if rule.after_step is None and rule.after_message is None)
        if self.nemesis is not None and self.nemesis.after_step is None:
            self._start_nemesis()

    @classmethod
    def install(cls, world: World, network: Network, broker: BrokerNode, scenario: sc.Scenario,
                node_of: Callable[[str], BrokerNode] | None = None) -> FaultLayer:
        # a replicated cluster's controller is linked too (KRaft's quorum, abstracted to one node)
        brokers = scenario.brokers if len(scenario.brokers) == 1 else (*scenario.brokers, CONTROLLER)
        layer = cls.attach(world, network, broker, scenario.faults, scenario.nemesis, tuple(scenario.actors), brokers)
        layer.node_of = node_of
        return layer

    @classmethod
    def attach(cls, world: World, network: Network, broker: BrokerNode, rules: tuple[sc.Fault, ...] = (),
               nemesis: sc.Nemesis | None = None, actors: tuple[str, ...] = (),
               brokers: tuple[str, ...] | None = None) -> FaultLayer:
        """A layer hooked into the network and the broker (a scenario's, or eosim.Simulation's). ``brokers``: every
        broker node a network fault may cut (default: ``broker``'s); the nemesis strikes ``broker``."""
        layer = cls(world, network, rules, nemesis, actors, brokers or (broker.node,), broker)
        network.route = layer.route if layer._counting else layer._route  # nothing counted: one call less per packet
        network.asleep = layer.asleep
        network.paused = layer._paused
        broker.inject = layer.inject
        broker.inject_txn_log = layer.inject_txn_log
        return layer

    @property
    def nodes(self) -> tuple[str, ...]:
        return (*self.actors, *self.brokers)

    # -- events -------------------------------------------------------------------------------------

    def _emit(self, what: str, rule: str, packet: Packet | None = None, **data: Any) -> None:
        if packet is not None:
            data = dict(correlation_id=packet.correlation_id, msg=type(packet.payload).__name__,
                        src=packet.src, dst=packet.dst, **data)
        self.world.trace.emit(NEMESIS, f"fault.{what}", rule=rule, **data)

    # -- the hooks ---------------------------------------------------------------------------------

    def route(self, packet: Packet) -> int | None:
        """The network's route: extra delay in ms, or None to drop the packet. A request arms the rules
        triggered by it (``after_message``/``after_count``, of its sender's only with ``after_node``) once it is
        routed: they strike later messages. (Without such rules the network routes by ``_route`` alone.)"""
        extra = self._route(packet)
        if packet.is_response:
            return extra
        api, src = api_name(packet.payload), node_of(packet.src)
        n = self._sent[api] = self._sent.get(api, 0) + 1
        own = self._sent[api, src] = self._sent.get((api, src), 0) + 1  # an after_node rule counts its node's only
        rules = [rule for rule in self.rules if rule.after_message == api
                 and rule.after_count == (n if rule.after_node is None else own if rule.after_node == src else 0)]
        for rule in rules:
            self._emit("arm", rule.name, msg=api, count=n)
        self._arm(rules)
        return extra

    def _route(self, packet: Packet) -> int | None:
        # Each check costs only when its fault is there: most packets of most runs meet none.
        src, dst = node_of(packet.src), node_of(packet.dst)
        if src == dst:
            pass  # a broker's request to itself (markers, verification) never crosses a link
        elif src not in self._linked or dst not in self._linked:
            self._emit("drop", "partition", packet)
            return None
        elif self._cuts and (src, dst) in self._cuts:  # TCP keeps retransmitting it: delivered after the heal
            self._emit("hold", "partition", packet)
            return HOLD
        extra = 0
        rule = self._match_packet(packet, packet.request if packet.is_response else packet.payload,
                                  NETWORK_ACTIONS) if self._armed else None
        if rule is not None and rule.action == "drop":
            self._emit("drop", rule.name, packet)
            return None
        if rule is not None and rule.action == "disconnect":
            self._emit("disconnect", rule.name, packet)
            conn = (packet.dst, packet.src) if packet.is_response else (packet.src, packet.dst)
            self.network.close(lambda s, d: (s, d) == conn)
            return None
        if rule is not None:
            extra += rule.ms
            self._emit("delay", rule.name, packet, ms=rule.ms)
        if self._clogs:
            clog = max(self._clogs.get(src, 0), self._clogs.get(dst, 0))
            if clog:
                extra += clog
                self._emit("delay", "clog", packet, ms=clog)
        if extra:
            self._calm_at = max(self._calm_at, self.world.now + extra)
        return extra

    def inject(self, packet: Packet) -> Injection | None:
        """The broker's hook, as it handles a request: an error to answer instead, or None."""
        rule = self._match_packet(packet, packet.payload, ERROR_ACTION) if self._armed else None
        if rule is None:
            return None
        error = Errors[rule.error]
        after = INFRASTRUCTURE_ERRORS[api_name(packet.payload)][error]
        self._emit("error", rule.name, packet, error=error.name, after_apply=after)
        return Injection(error=error, after_apply=after)

    def inject_txn_log(self, node: str, append: AppendTxnLog) -> Injection | None:
        """The broker's hook as the transaction coordinator on ``node`` appends to ``__transaction_state``: an
        error the append fails with, or None. Only rules naming ``message = "TxnLogAppend"`` strike it (the
        loader gives them the error action and at most the transactional_id and node selectors)."""
        rule = self._match(lambda r: r.message == TXN_LOG_APPEND and r.node in (None, node)
                           and r.transactional_id in (None, append.transactional_id))
        if rule is None:
            return None
        error = Errors[rule.error]
        after = injectable_errors(TXN_LOG_APPEND)[error]
        self._emit("error", rule.name, msg=TXN_LOG_APPEND, broker=node, write_id=append.write_id,
                   transactional_id=append.transactional_id, error=error.name, after_apply=after)
        return Injection(error=error, after_apply=after)

    def _match_packet(self, packet: Packet, request: Any, actions: frozenset[str]) -> sc.Fault | None:
        if not self._armed:
            return None
        f = facts(request)
        return self._match(lambda r: r.action in actions and selects(r, packet, f))

    def _match(self, applies: Callable[[sc.Fault], bool]) -> sc.Fault | None:
        """The first armed rule that ``applies``; its count goes down."""
        for armed in self._armed:
            if applies(armed.rule):
                if armed.left is not None:
                    armed.left -= 1
                    if armed.left == 0:
                        self._armed.remove(armed)
                return armed.rule
        return None

    # -- arming ----------------------------------------------------------------------------------------

    def _arm(self, rules: Iterable[sc.Fault]) -> None:
        rules = list(rules)
        if not rules:
            return
        for rule in rules:
            self._armed.append(_Armed(rule, None if rule.count == sc.UNTIL_HEALED else rule.count))
        # keep declaration order (a nemesis rule, armed at run time, comes last)
        order = {rule.name: i for i, rule in enumerate(self.rules)}
        self._armed.sort(key=lambda a: order.get(a.rule.name, len(order)))

    def add_actor(self, actor: str) -> None:
        """A client created while the layer runs (eosim.Simulation): linked to every node, as after a heal."""
        if actor not in self.nodes:
            self.actors = (*self.actors, actor)
            self._linked.add(actor)

    def arm(self, rule: sc.Fault) -> None:
        """Arm ``rule`` now, after the rules already armed (eosim.Simulation.add_fault)."""
        self._emit("arm", rule.name)
        self._armed.append(_Armed(rule, None if rule.count == sc.UNTIL_HEALED else rule.count))

    def after_step(self, index: int) -> None:
        """Step ``index`` was performed: arm its rules, start or stop the random nemesis."""
        if self.rules:
            rules = [rule for rule in self.rules if rule.after_step == index]
            for rule in rules:
                self._emit("arm", rule.name)
            self._arm(rules)
        nemesis = self.nemesis
        if nemesis is not None:
            if nemesis.after_step == index:
                self._start_nemesis()
            if nemesis.until_step == index + 1:
                self._stop_nemesis()

    def end(self) -> int:
        """The steps are over: heal, disarm every rule, stop the nemesis. Returns the time from which no
        packet is held back any more (the last delayed packet's arrival or paused actor's wake-up)."""
        self._stop_nemesis()
        if self._cut() or self._clogs or any(a.left is None for a in self._armed):
            self.heal(rule="end")
        self._armed.clear()
        return max(self.world.now, self._calm_at, *self._paused.values())

    # -- nemesis ops -----------------------------------------------------------------------------------

    def partition(self, nodes: Iterable[str], *, rule: str = "partition") -> None:
        """Cut every link between ``nodes`` and the other nodes, until a heal."""
        side = set(nodes)
        self._cuts.update((a, b) for a in self._linked for b in self._linked if (a in side) != (b in side))
        self._emit("partition", rule, nodes=sorted(side))

    def clog(self, nodes: Iterable[str], ms: int, *, rule: str = "clog") -> None:
        """Every packet on these nodes' links takes ``ms`` longer, until a heal."""
        nodes = sorted(set(nodes))
        for node in nodes:
            self._clogs[node] = ms
        self._emit("clog", rule, nodes=nodes, ms=ms)

    def disconnect(self, nodes: Iterable[str], *, rule: str = "disconnect") -> None:
        """Close every connection of these nodes now."""
        side = set(nodes)
        self._emit("disconnect", rule, nodes=sorted(side))
        self.network.close(lambda s, d: node_of(s) in side or node_of(d) in side)

    def pause(self, actor: str, ms: int, *, rule: str = "pause") -> None:
        """Stop the world for ``actor`` for ``ms``, as a GC pause or SIGSTOP does: its client neither runs
        nor sends, responses wait in its socket, its timers fire when it wakes (sim/_client/handle.py),
        and the interpreter holds its next step until then."""
        wake = max(self._paused.get(actor, 0), self.world.now + ms)
        self._paused[actor] = wake
        self._emit("pause", rule, nodes=[actor], ms=ms)

        def resume(_event: object) -> None:
            if self._paused.get(actor) == wake:
                del self._paused[actor]
                self._emit("resume", rule, nodes=[actor])

        self.world.env.timeout(wake - self.world.now).callbacks.append(resume)

    def paused_until(self, actor: str) -> int | None:
        """When ``actor`` wakes, if it is paused."""
        return self._paused.get(actor)

    def asleep(self, endpoint: str) -> int:
        """The network's hook: when the node at ``endpoint`` wakes (0: running)."""
        return self._paused.get(node_of(endpoint), 0) if self._paused else 0

    def heal(self, *, rule: str = "heal") -> None:
        """Restore every link, unclog every node, end every until-healed rule and the nemesis' rules."""
        self._cuts.clear()
        self._clogs.clear()
        self._armed = [a for a in self._armed if a.left is not None and a.rule.name != NEMESIS]
        self._emit("heal", rule)
        self._calm_at = max(self._calm_at, self.network.release())

    def _cut(self) -> bool:
        return bool(self._cuts)

    # -- the random nemesis ----------------------------------------------------------------------------

    def start_nemesis(self, spec: sc.Nemesis) -> None:
        """Start the random nemesis ``spec`` now (eosim.Simulation.start_nemesis)."""
        self.nemesis = spec
        self._start_nemesis()

    def stop_nemesis(self) -> None:
        """Heal the random nemesis' current fault and stop it."""
        self._stop_nemesis()

    def _start_nemesis(self) -> None:
        self._nemesis_on = True
        self.world.env.process(self._nemesis(self.nemesis))

    def _stop_nemesis(self) -> None:
        if self._nemesis_on:
            self._nemesis_on = False
            if self._window:
                self._window = 0
                self._unstrike()

    def _nemesis(self, spec: sc.Nemesis):
        """Execution: each strike at its time (once the previous one has healed), healed after its
        duration, until stopped. The strikes are the spec's schedule, or drawn by ``draw_strikes``."""
        others = tuple(b for b in self.brokers if b != CONTROLLER)[1:]
        strikes = iter(spec.strikes) if spec.strikes else draw_strikes(spec, self.world.rng(NEMESIS), self.actors,
                                                                       others)
        start = self.world.now
        window = 0
        for strike in strikes:
            yield self.world.env.timeout(max(start + strike.at_ms - self.world.now, 0))
            if not self._nemesis_on:
                return
            window += 1
            self._window = window
            self._strike(strike)
            yield self.world.env.timeout(strike.duration_ms)
            if self._window != window:
                return  # stopped (and healed) meanwhile
            self._window = 0
            self._unstrike()

    def _strike(self, strike: sc.Strike) -> None:
        kind, target = strike.kind, strike.target
        if kind == "partition":
            self.partition([target], rule=NEMESIS)
        elif kind == "clog":
            self.clog([target], strike.ms, rule=NEMESIS)
        elif kind == "pause":
            self.pause(target, strike.duration_ms, rule=NEMESIS)
        elif kind == "disconnect":
            self.disconnect([target], rule=NEMESIS)
        elif kind == "broker-restart":
            node = self.broker if target is None else self.node_of(target)
            if node is not None and node.up:  # not if a step crashed it already
                node.crash()
                self._crashed = node
        elif kind == "broker-partition":  # a silent host, unlike broker-restart's killed process
            self.partition([target], rule=NEMESIS)
        elif kind == "coordinator-failover":
            if self.broker is not None and self.broker.up:
                self.broker.coordinator_failover(strike.duration_ms)
        else:  # a rule on the target's next few packets, or on the coordinator's next txn-log appends
            extra: dict[str, Any] = {}
            if strike.ms is not None:
                extra["ms"] = strike.ms
            if strike.error is not None:
                extra["error"] = strike.error
            fields = ({"action": "error", "message": TXN_LOG_APPEND} if kind == "txn-log"
                      else {"action": kind, "node": target})
            rule = sc.Fault(name=NEMESIS, count=strike.count, **fields, **extra)
            self._armed.append(_Armed(rule, strike.count))
            self._emit("arm", NEMESIS, action=rule.action, nodes=[target] if target else [], count=strike.count,
                       **({"msg": TXN_LOG_APPEND} if kind == "txn-log" else {}), **extra)

    def _unstrike(self) -> None:
        if self._crashed is not None:  # only the broker this nemesis crashed
            node, self._crashed = self._crashed, None
            node.restart()
        self.heal(rule=NEMESIS)


# The errors a nemesis strike draws from, by name.
_STRIKE_ERRORS = sorted({e.name for errors in INFRASTRUCTURE_ERRORS.values() for e in errors})
_TXN_LOG_STRIKE_ERRORS = sorted(e.name for e in TXN_LOG_APPEND_ERRORS)


def draw_strikes(spec: sc.Nemesis, rng: Any, actors: tuple[str, ...], brokers: tuple[str, ...] = ()) -> Iterator[sc.Strike]:
    """Generation: the random nemesis' choices as a schedule, one strike after another, forever (the
    executor stops taking them when the nemesis stops). Gaps and durations are drawn from half to one and
    a half times ``interval_ms`` and ``duration_ms``; only ``rng`` (the seed's nemesis stream) is used.
    ``brokers``: broker-2 .. broker-N of a replicated cluster, which broker-restart and broker-partition strike
    (one broker: none, and the draws are as before)."""
    targets = spec.targets or actors
    at = 0
    while True:
        at += rng.randint(spec.interval_ms // 2, spec.interval_ms * 3 // 2)
        kind, target = rng.choice(spec.kinds), rng.choice(targets)
        duration = max(rng.randint(spec.duration_ms // 2, spec.duration_ms * 3 // 2), 1)
        extra: dict[str, Any] = {}
        if kind == "clog":
            extra["ms"] = rng.randint(1, duration)
        elif kind in ("drop", "delay", "error", "txn-log"):
            extra["count"] = rng.randint(1, NEMESIS_MAX_COUNT)
            if kind == "delay":
                extra["ms"] = rng.randint(1, duration)
            elif kind == "error":
                extra["error"] = rng.choice(_STRIKE_ERRORS)
            elif kind == "txn-log":
                extra["error"] = rng.choice(_TXN_LOG_STRIKE_ERRORS)
        if kind in sc.NEMESIS_CLUSTER_KINDS and brokers:
            target = rng.choice(brokers)
        elif kind in sc.NEMESIS_BROKER_KINDS:
            target = None
        yield sc.Strike(at_ms=at, kind=kind, target=target, duration_ms=duration, **extra)
        at += duration


def nemesis_schedule(scenario: sc.Scenario, strikes: int, seed: int | None = None) -> sc.Scenario:
    """``scenario`` with its random ``[nemesis]`` written out as the schedule of its first ``strikes``
    strikes at ``seed`` (default: the scenario's), which a run at that seed replays exactly as the random
    one (as long as the nemesis stops before they are used up)."""
    spec = scenario.nemesis
    rng = Random(derive_seed(scenario.scenario.seed if seed is None else seed, NEMESIS))
    drawn = draw_strikes(spec, rng, tuple(scenario.actors), scenario.brokers[1:])
    return evolve(scenario, nemesis=evolve(spec, strikes=tuple(islice(drawn, strikes))))
