"""Start a real single-node Apache Kafka KRaft broker from Maven Central jars.

Stdlib only, except the readiness probe, which imports confluent-kafka lazily
(the `fetch` command works without it). See docs/real-kafka.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

from eosim.models.bugs import PINNED_RELEASE

DEFAULT_VERSION = PINNED_RELEASE
RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
MARKER = "eosim-complete"
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 15.0
PORT_ATTEMPTS = 3
JVM_OPTS = [
    "-Xms256m",
    "-Xmx512m",
    # C1 only: broker start 2.1 -> 1.8 s and ~30 MB less RSS (docs/real-kafka.md).
    "-XX:TieredStopAtLevel=1",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
]


class KafkaUnavailable(RuntimeError):
    """The broker could not be provided; `reason` says why (with log tails)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ToolMissing(KafkaUnavailable):
    """java or mvn is not installed: the one case a local test run may skip."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread inside ``cleanup_on_signals`` so that every
    ``finally`` runs: the broker stops, its data dir goes, the actors are killed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_shield = threading.local()  # .depth: shielded() nesting; .pending: a signal that arrived inside


@contextlib.contextmanager
def cleanup_on_signals():
    """Within it, SIGINT and SIGTERM raise ``Interrupted`` in the main thread (SIGTERM's default would
    end the process at once, leaving the broker's data dir, the actors and multiprocessing's helper
    processes behind). The first signal wins: later ones are ignored while the cleanup it started
    runs (bounded: a broker gets STOP_TIMEOUT_S, an actor KILL_TIMEOUT_S). A no-op outside the main
    thread, where Python cannot install handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def interrupt(signum: int, _frame: object) -> None:
        for other in previous:
            signal.signal(other, signal.SIG_IGN)
        if getattr(_shield, "depth", 0):
            _shield.pending = signum  # raised when the shielded cleanup is done
            return
        raise Interrupted(signum)

    for signum in previous:
        signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def shielded():
    """Cleanup that a signal must not cut in half: an ``Interrupted`` that arrives inside it (in the
    main thread, where handlers run) is raised when it ends."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _shield.depth = getattr(_shield, "depth", 0) + 1
    try:
        yield
    finally:
        _shield.depth -= 1
        pending = getattr(_shield, "pending", None)
        if pending is not None and _shield.depth == 0:
            _shield.pending = None
            raise Interrupted(pending)


def cache_root() -> Path:
    env = os.environ.get("EOSIM_KAFKA_HOME")
    return Path(env) if env else Path.home() / ".cache" / "eosim" / "kafka"


def bootstrap_from_env() -> str | None:
    """EOSIM_KAFKA_BOOTSTRAP names an already-running broker to use instead of starting one."""
    return os.environ.get("EOSIM_KAFKA_BOOTSTRAP") or None


def _which(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(f"`{tool}` not found on PATH; install it (OpenJDK 17+ / Maven 3.8+)")
    return path


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _pom_digest() -> str:
    return hashlib.sha256((RUNTIME_DIR / "pom.xml").read_bytes()).hexdigest()


def _libs_complete(version_dir: Path) -> bool:
    # Marker: "pom <sha256>" then the jar names; a changed pom.xml invalidates the cache.
    marker = version_dir / MARKER
    if not marker.is_file():
        return False
    head, *names = marker.read_text().split("\n")
    names = [n for n in names if n]
    return head == f"pom {_pom_digest()}" and bool(names) and all(
        (version_dir / "libs" / n).is_file() for n in names)


def ensure_jars(version: str = DEFAULT_VERSION) -> Path:
    """Return the directory holding the broker's runtime jars, downloading them if needed."""
    version_dir = cache_root() / version
    libs = version_dir / "libs"
    if _libs_complete(version_dir):
        return libs
    mvn = _which("mvn")
    version_dir.mkdir(parents=True, exist_ok=True)
    with (version_dir / ".lock").open("w") as lock:
        # One download at a time (e.g. .ci/kafka.sh and a test run); the winner's result is reused.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _libs_complete(version_dir):
            return libs
        # Copy into a scratch dir and rename, so an interrupted run never looks complete.
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=version_dir))
        try:
            _copy_dependencies(mvn, version, staging)
            names = sorted(p.name for p in staging.glob("*.jar"))
            if not any(n.startswith(f"kafka_2.13-{version}") for n in names):
                raise KafkaUnavailable(f"mvn succeeded but copied no kafka_2.13-{version} jar")
            shutil.rmtree(libs, ignore_errors=True)
            os.replace(staging, libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        (version_dir / MARKER).write_text("\n".join([f"pom {_pom_digest()}", *names]) + "\n")
    return libs


def _copy_dependencies(mvn: str, version: str, dest: Path) -> None:
    cmd = [
        mvn, "-B", "-q", "-f", str(RUNTIME_DIR / "pom.xml"), f"-Dkafka.version={version}",
        *(["-Pkafka-4.0"] if version.startswith("4.0.") else []),
        "dependency:copy-dependencies", "-DincludeScope=runtime", f"-DoutputDirectory={dest}",
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        # Maven's console colour codes survive -B; strip them from the message.
        tail = "\n".join(re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout).splitlines()[-40:])
        raise KafkaUnavailable(f"mvn failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")


def new_cluster_id() -> str:
    """Kafka's Uuid.toString: url-safe base64, no padding, 22 chars, never starting with '-'."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _free_ports(n: int) -> list[int]:
    # Hold all sockets at once so the kernel cannot hand out the same port twice.
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


PROXIED = "PROXIED"  # the listener clients reach through sim/_realkafka/proxy.py


def server_properties(port: int, controller_port: int, log_dir: Path, overrides: dict[str, str],
                      proxied_port: int | None = None, proxy_port: int | None = None) -> dict[str, str]:
    """With ``proxied_port`` and ``proxy_port``: a second listener, PROXIED, on ``proxied_port`` that
    advertises ``proxy_port``, so a client bootstrapped at a proxy listening there stays behind it."""
    proxied = proxied_port is not None and proxy_port is not None
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        # Static voter: the same file formats without --standalone.
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"
                     + (f",{PROXIED}://127.0.0.1:{proxied_port}" if proxied else ""),
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}"
                                + (f",{PROXIED}://127.0.0.1:{proxy_port}" if proxied else ""),
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
                                          + (f",{PROXIED}:PLAINTEXT" if proxied else ""),
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        # Tests create their topics explicitly; a typo must not silently make one.
        "auto.create.topics.enable": "false",
        # One partition each: coordinator topics are created and loaded fast, and
        # every group/transactional id maps to partition 0.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "group.min.session.timeout.ms": "500",
        # Timed-out transactions are aborted within ~0.5 s instead of 10 s.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "500",
        # The default 128 MiB buffer is allocated on the heap at start; must be > 1 MiB per thread.
        "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
    }
    props.update(overrides)
    return props


def die_with_parent():
    """preexec_fn so the JVM cannot outlive the Python process (killed pytest, ^C).

    Linux sends the signal when the *thread* that started the broker exits: start
    brokers from a thread that outlives them (pytest's main thread does).
    """
    if sys.platform != "linux":
        return None
    # Resolved before fork: after fork only this already-bound call runs.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    PR_SET_PDEATHSIG = 1
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class KafkaBroker:
    """One single-node combined (broker+controller) KRaft process on 127.0.0.1."""

    def __init__(self, version: str = DEFAULT_VERSION, overrides: dict[str, str] | None = None):
        self.version = version
        self.overrides = dict(overrides or {})
        self.transaction_version: int | None = None
        self.data_dir: Path | None = None
        self.port: int | None = None
        # The PROXIED listener: the broker listens on proxied_port and advertises proxy_port, where a
        # sim/_realkafka/proxy.py KafkaProxy may listen (docs/conformance.md, message faults).
        self.proxied_port: int | None = None
        self.proxy_port: int | None = None
        self.timings: dict[str, float] = {}
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise RuntimeError("broker not started")
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "broker.log"

    def _java_cmd(self, libs: Path, java: str, main: str, *args: str) -> list[str]:
        log4j = RUNTIME_DIR / "log4j2.properties"
        return [
            java, *JVM_OPTS, f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.data_dir}", "-cp", f"{libs}/*", main, *args,
        ]

    def start(self, transaction_version: int = 2, timeout: float = READY_TIMEOUT_S) -> KafkaBroker:
        """Format a fresh data dir with transaction.version=N and wait until the broker serves metadata."""
        if self._proc is not None:
            raise RuntimeError("broker already started")
        java = _which("java")
        t0 = time.monotonic()
        libs = ensure_jars(self.version)
        self.timings["jars_s"] = time.monotonic() - t0
        self.transaction_version = transaction_version
        attempt = 1
        while True:
            try:
                self._start_once(java, libs, transaction_version, timeout)
                return self
            except KafkaUnavailable:
                # Ports are picked ~1 s before the JVM binds them; another process may win the race.
                if attempt == PORT_ATTEMPTS or "Address already in use" not in _tail(self.log_path):
                    raise
                shutil.rmtree(self.data_dir, ignore_errors=True)
                attempt += 1

    def _start_once(self, java: str, libs: Path, transaction_version: int, timeout: float) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="eosim-kafka-"))
        try:
            self._format_and_start(java, libs, transaction_version, timeout)
        except KafkaUnavailable:
            raise  # the data dir stays, for its logs (the reason names it)
        except BaseException:  # ^C, SIGTERM (Interrupted), a bug: nothing of this start may remain
            with shielded():
                self._kill()
                shutil.rmtree(self.data_dir, ignore_errors=True)
            raise

    def _format_and_start(self, java: str, libs: Path, transaction_version: int, timeout: float) -> None:
        self.port, controller_port, self.proxied_port, self.proxy_port = _free_ports(4)
        props = server_properties(self.port, controller_port, self.data_dir / "data", self.overrides,
                                  self.proxied_port, self.proxy_port)
        config = self.data_dir / "server.properties"
        config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

        t0 = time.monotonic()
        fmt_log = self.data_dir / "format.log"
        with fmt_log.open("w") as out:
            rc = subprocess.run(
                self._java_cmd(libs, java, "kafka.tools.StorageTool", "format", "-t", new_cluster_id(),
                               "-c", str(config), "--feature", f"transaction.version={transaction_version}"),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent(),
            ).returncode
        self.timings["format_s"] = time.monotonic() - t0
        if rc != 0:
            raise KafkaUnavailable(
                f"StorageTool format failed (exit {rc}); data dir kept at {self.data_dir}\n{_tail(fmt_log)}")

        t0 = time.monotonic()
        self._log = self.log_path.open("w")
        self._proc = subprocess.Popen(
            self._java_cmd(libs, java, "kafka.Kafka", str(config)),
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )
        try:
            self._wait_ready(t0 + timeout)
        except KafkaUnavailable:
            self._kill()
            raise
        self.timings["start_s"] = time.monotonic() - t0

    def _wait_ready(self, deadline: float) -> None:
        try:
            from confluent_kafka import KafkaException
            from confluent_kafka.admin import AdminClient
        except ImportError as exc:
            raise KafkaUnavailable(f"readiness probe needs confluent-kafka: {exc}") from exc
        # Short reconnect backoff: librdkafka's default grows to 10 s while the port is closed.
        admin = AdminClient({
            "bootstrap.servers": self.bootstrap,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 250,
            "log_level": 0,
        })
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise KafkaUnavailable(self._failure(f"broker exited with code {self._proc.returncode}"))
            try:
                md = admin.list_topics(timeout=1.0)
            except KafkaException as exc:
                last = str(exc)
                continue
            # The broker listener starts serving only after the broker is unfenced
            # (its log: "Finished waiting for the broker to be unfenced"), so an
            # answer that lists the broker means it can lead partitions.
            if md.brokers:
                return
            last = "metadata lists no broker yet"
        raise KafkaUnavailable(self._failure(f"no broker in metadata before the deadline; last: {last}"))

    def _failure(self, what: str) -> str:
        return f"{what}; data dir kept at {self.data_dir}; log {self.log_path}:\n{_tail(self.log_path)}"

    def _kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, keep_data: bool = False) -> None:
        """SIGTERM (the broker's shutdown hook runs), SIGKILL after STOP_TIMEOUT_S."""
        if self._proc is None:
            return
        with shielded():
            t0 = time.monotonic()
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    pass
            self._kill()
            self.timings["stop_s"] = time.monotonic() - t0
            self._proc = None
            if not keep_data and self.data_dir is not None:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> KafkaBroker:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _parse_override(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eosim._realkafka.broker")
    sub = parser.add_subparsers(dest="cmd", required=True)
    fetch = sub.add_parser("fetch", help="download the broker jars into the cache")
    fetch.add_argument("--version", default=DEFAULT_VERSION)
    run = sub.add_parser("run", help="start a broker in the foreground until ^C")
    run.add_argument("--version", default=DEFAULT_VERSION)
    run.add_argument("--transaction-version", type=int, default=2)
    run.add_argument("--override", type=_parse_override, action="append", default=[],
                     metavar="KEY=VALUE", help="extra server property (repeatable)")
    args = parser.parse_args(argv)
    with cleanup_on_signals():
        try:
            return _run_command(args)
        except Interrupted as exc:
            return 128 + exc.signum
        except KafkaUnavailable as exc:
            print(f"error: {exc.reason}", file=sys.stderr)
            return 1


def _run_command(args: argparse.Namespace) -> int:
    if args.cmd == "fetch":
        t0 = time.monotonic()
        libs = ensure_jars(args.version)
        print(f"{libs} ({len(list(libs.glob('*.jar')))} jars, {time.monotonic() - t0:.1f}s)")
        return 0
    broker = KafkaBroker(args.version, dict(args.override))
    broker.start(transaction_version=args.transaction_version)
    try:
        print(broker.bootstrap, flush=True)
        print(f"data dir {broker.data_dir}, pid {broker.pid}, timings {broker.timings}", file=sys.stderr, flush=True)
        try:
            broker._proc.wait()
        except Interrupted:
            return 0  # stopped as asked
        return 1  # the broker died on its own (its data dir goes with it: rerun to reproduce)
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
