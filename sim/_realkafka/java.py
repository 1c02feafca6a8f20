"""eosim._realkafka.java
===================

The Java lane (docs/conformance.md): an actor whose config says ``eosim.client = "java"`` runs the
real Kafka Java client, ``kafka-clients`` of the pinned release, in a JVM of its own
(``sim/_realkafka/java/``, built once with Maven into ``~/.cache/eosim/java``). The driver talks to
it through ``JavaActorProxy``, the same confluent-kafka-shaped methods as the confluent actor, over
the JVM's stdin/stdout as JSON lines: crash is SIGKILL of the JVM, pause SIGSTOP.

The scenario's config is librdkafka's; ``java_config`` translates it key by key into the Java
client's (``JAVA_KEYS``), and refuses a key the Java client has no counterpart for.
"""

from __future__ import annotations

import atexit
import fcntl
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from attrs import define, field

from eosim._realkafka.broker import DEFAULT_VERSION, KafkaUnavailable, _which, cache_root, die_with_parent
from eosim._realkafka.driver import START_TIMEOUT_S, ActorProxy, DriverError, NotReproducible, _DeliveryToken, _Msg, _TP

SOURCE_DIR = Path(__file__).resolve().parent / "java"
SOURCES = ("pom.xml", "src/main/java/eosim/Actor.java")
MAIN = "eosim.Actor"
# A client JVM starts in ~0.5 s with these (C1 only, serial GC, small heap); an actor needs little.
JVM_OPTS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xms32m", "-Xmx256m", "-XX:-UsePerfData",
            "-Xshare:auto", "-Djava.awt.headless=true", "-Dorg.slf4j.simpleLogger.showDateTime=true",
            "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS"]
SPARES = 2  # JVMs started ahead, waiting for their client's config: an actor starts without a JVM start

# librdkafka key (as the scenario writes it, aliases included) -> the Java client's key.
JAVA_KEYS = {
    **{key: key for key in (
        "bootstrap.servers", "client.id", "transactional.id", "enable.idempotence", "acks", "retries", "linger.ms",
        "transaction.timeout.ms", "retry.backoff.ms", "retry.backoff.max.ms", "group.id", "group.instance.id",
        "isolation.level", "enable.auto.commit", "auto.commit.interval.ms", "auto.offset.reset",
        "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "delivery.timeout.ms",
        "group.protocol", "group.remote.assignor")},
    "request.required.acks": "acks",
    "message.send.max.retries": "retries",
    "queue.buffering.max.ms": "linger.ms",
    "message.timeout.ms": "delivery.timeout.ms",
    "max.in.flight": "max.in.flight.requests.per.connection",
    "max.in.flight.requests.per.connection": "max.in.flight.requests.per.connection",
    # librdkafka's client-side request timeout; Java's is request.timeout.ms (the simulated Java client
    # reads socket.timeout.ms as it: sim/_client/config.py).
    "socket.timeout.ms": "request.timeout.ms",
    "fetch.wait.max.ms": "fetch.max.wait.ms",
}
# librdkafka's auto.offset.reset names -> Java's (ConsumerConfig: earliest, latest, none)
OFFSET_RESET = {"smallest": "earliest", "earliest": "earliest", "beginning": "earliest", "largest": "latest",
                "latest": "latest", "end": "latest", "error": "none"}


def java_config(kind: str, config: dict[str, Any]) -> dict[str, str]:
    """The Java client's properties for a scenario actor's (librdkafka-shaped) config."""
    props: dict[str, str] = {}
    for key, value in config.items():
        if key == "eosim.client":
            continue
        if key not in JAVA_KEYS:
            raise NotReproducible(f'"{key}" has no counterpart in the Java client (sim/_realkafka/java.py JAVA_KEYS)')
        text = str(value).lower() if isinstance(value, bool) else str(value)
        props[JAVA_KEYS[key]] = OFFSET_RESET.get(text.lower(), text) if key == "auto.offset.reset" else text
    if kind == "consumer":
        # consume(n) must not take a record from the consumer (moving its position) without returning it.
        props["max.poll.records"] = "1"
    return props


# --- the build -------------------------------------------------------------------------------------


def _digest(version: str) -> str:
    h = hashlib.sha256(version.encode())
    for name in SOURCES:
        h.update((SOURCE_DIR / name).read_bytes())
    return h.hexdigest()[:16]


@functools.cache
def ensure_actor(version: str = DEFAULT_VERSION) -> str:
    """The actor's classpath, building it with Maven on first use: one build per (client release,
    sources), cached under ~/.cache/eosim/java (a changed source builds anew; a process keeps the
    build it started with)."""
    home = cache_root().parent / "java" / f"{version}-{_digest(version)}"
    marker = home / "eosim-complete"
    classpath = f"{home / 'classes'}:{home / 'libs'}/*"
    if marker.is_file():
        return classpath
    _which("java")
    mvn = _which("mvn")
    home.mkdir(parents=True, exist_ok=True)
    with (home / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the winner's result is reused
        if marker.is_file():
            return classpath
        staging = Path(tempfile.mkdtemp(prefix="build-", dir=home))
        try:
            cmd = [mvn, "-B", "-q", "-f", str(SOURCE_DIR / "pom.xml"), f"-Dkafka.version={version}",
                   f"-Dbuild.dir={staging / 'target'}", "compile", "dependency:copy-dependencies",
                   "-DincludeScope=runtime", f"-DoutputDirectory={staging / 'libs'}"]
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if proc.returncode != 0:
                tail = "\n".join(proc.stdout.splitlines()[-40:])
                raise KafkaUnavailable(f"building the Java actor failed (exit {proc.returncode}): "
                                       f"{' '.join(cmd)}\n{tail}")
            for name in ("classes", "libs"):
                shutil.rmtree(home / name, ignore_errors=True)
            os.replace(staging / "target" / "classes", home / "classes")
            os.replace(staging / "libs", home / "libs")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        marker.write_text(f"kafka-clients {version}\n")
    return classpath


# --- JVMs ------------------------------------------------------------------------------------------


class _Spares:
    """JVMs started ahead with the actor's classes loaded, each waiting for its first stdin line."""

    def __init__(self) -> None:
        self._ready: dict[str, list[subprocess.Popen]] = {}
        self._lock = threading.Lock()
        atexit.register(self.close)

    def take(self, classpath: str) -> subprocess.Popen:
        with self._lock:
            ready = self._ready.setdefault(classpath, [])
            ready[:] = [p for p in ready if p.poll() is None]
            process = ready.pop(0) if ready else _start_jvm(classpath)
            while len(ready) < SPARES:
                ready.append(_start_jvm(classpath))
        return process

    def close(self) -> None:
        with self._lock:
            for ready in self._ready.values():
                for process in ready:
                    process.kill()
                    process.wait()
            self._ready.clear()


def _start_jvm(classpath: str) -> subprocess.Popen:
    # Its own session: a ^C in the terminal must not end a client mid-step (the driver ends actors).
    # PR_SET_PDEATHSIG ties it to the starting thread: actors and spares are started by the driver's.
    return subprocess.Popen([_which("java"), *JVM_OPTS, "-cp", classpath, MAIN], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=die_with_parent())


SPARE_JVMS = _Spares()

# The order of each method's keyword arguments in the Java actor's positional ``args``.
_KWARGS = {"produce": ("value", "key", "partition", "on_delivery"), "commit": ("offsets", "asynchronous")}
_RETURNS_PARTITIONS = {"commit", "committed", "position", "assignment"}


@define(eq=False)
class JavaActorProxy(ActorProxy):
    """ActorProxy over a JVM running sim/_realkafka/java/.../Actor.java instead of a confluent-kafka
    process; everything above the transport (namespacing, delivery callbacks, kill) is shared."""

    classpath: str = field(kw_only=True)
    _methods: dict[int, str] = field(init=False, factory=dict)  # call id -> method, to decode its reply

    def _spawn(self) -> None:
        self._process = SPARE_JVMS.take(self.classpath)
        self._conn = self._process.stdin

    def _first_reply(self) -> tuple[str, Any]:
        # The client logs through slf4j-simple into log_path, which the JVM learns with its config.
        self._write({"kind": self.kind, "config": java_config(self.kind, self.config),
                     "log": None if self.log_path is None else str(self.log_path)})
        box: list[Any] = []
        reader = threading.Thread(target=lambda: box.append(self._process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not box:
            raise DriverError(f"actor {self.name}: no Java client after {START_TIMEOUT_S} s")
        if not box[0]:
            raise DriverError(f"actor {self.name}: the JVM died while starting (exit code {self._process.poll()}); "
                              f"see {self.log_path}")
        reply = json.loads(box[0])
        return reply["status"], reply["result"]

    def _write(self, message: dict[str, Any]) -> None:
        self._process.stdin.write((json.dumps(message) + "\n").encode())
        self._process.stdin.flush()

    def _send(self, call_id: int, method: str, args: list, kwargs: dict) -> None:
        self._methods[call_id] = method
        args = list(args) + [kwargs.get(name) for name in _KWARGS.get(method, ())]
        self._write({"id": call_id, "method": method, "args": _encode(args)})

    def _receive(self) -> tuple[int, str, Any, list]:
        line = self._process.stdout.readline()
        if not line:
            raise EOFError
        reply = json.loads(line)
        result = reply["result"]
        method = self._methods.pop(reply["id"], None)
        if reply["status"] == "ok" and method == "consume":
            result = [_Msg(t, p, o, _bytes(k), _bytes(v), None) for t, p, o, k, v in result]
        elif reply["status"] == "ok" and method in _RETURNS_PARTITIONS and result is not None:
            result = [_TP(t, p, o) for t, p, o in result]
        elif reply["status"] == "kafka":
            result = tuple(result)
        reports = [(token, None if err is None else tuple(err), tuple(tp)) for token, err, tp in reply["reports"]]
        return reply["id"], reply["status"], result, reports

    def _reap(self) -> int | None:
        try:
            return self._process.wait(5)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum: int) -> None:
        if self._process.poll() is None:
            os.kill(self._process.pid, signum)

    def _terminate(self) -> None:
        self._process.kill()
        self._process.wait()
        for stream in (self._process.stdin, self._process.stdout):
            try:
                stream.close()
            except OSError:
                pass


def _encode(value: Any) -> Any:
    if isinstance(value, _TP):
        return [value.topic, value.partition, value.offset]
    if isinstance(value, _DeliveryToken):
        return value.id
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [_encode(v) for v in value]
    return value


def _bytes(value: str | None) -> bytes | None:
    return None if value is None else value.encode("utf-8", "surrogateescape")


if __name__ == "__main__":  # python -m eosim._realkafka.java build [VERSION]: what .ci/kafka.sh runs
    import sys

    if sys.argv[1:2] != ["build"] or len(sys.argv) > 3:
        sys.exit("usage: python -m eosim._realkafka.java build [KAFKA_CLIENTS_VERSION]")
    try:
        print(ensure_actor(*sys.argv[2:]))
    except KafkaUnavailable as exc:
        sys.exit(f"eosim: {exc.reason}")
