"""Start a real 3-broker Apache Kafka KRaft cluster (1 controller + N brokers) from the Maven jars.

One controller-only process and N broker-only processes on loopback ports, in one temporary directory.
``kill(node)`` is SIGKILL of a broker's JVM; ``restart(node)`` starts the JVM again on the same log directory and
ports. Why a separate controller: the replication model (``eosim.models.replication_control``) has a controller
that never dies while brokers crash and restart, and fences a broker whose heartbeats stop. With combined
broker+controller nodes a kill would also take out a quorum voter (and sometimes the active controller, adding a
controller failover to every broker failure), which the model does not have. See docs/real-kafka.md, "A 3-broker
cluster".
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eosim._realkafka.broker import (
    DEFAULT_VERSION,
    JVM_OPTS,
    PORT_ATTEMPTS,
    RUNTIME_DIR,
    Interrupted,
    KafkaUnavailable,
    _free_ports,
    _tail,
    _which,
    cleanup_on_signals,
    die_with_parent,
    ensure_jars,
    new_cluster_id,
    server_properties,
    shielded,
)

CONTROLLER_ID = 0
# Four JVMs starting at once on 2 shared cores: under a load of 20-30 the controller alone took 88 s to start, and
# the single broker's 90 s deadline failed a CI-like run. Measured starts are in docs/real-kafka.md.
CLUSTER_READY_TIMEOUT_S = 300.0
# Four JVMs share a small machine: a quarter of the single broker's heap each is ample (RSS in docs/real-kafka.md).
CLUSTER_JVM_OPTS = [o for o in JVM_OPTS if not o.startswith(("-Xms", "-Xmx"))] + ["-Xms64m", "-Xmx256m"]
# The controller fences a broker whose heartbeats stop for broker.session.timeout.ms: Kafka's default (9000), the
# simulator's (eosim.models.config.ReplicationConfig), so library scenarios time their kills alike on both.
# Heartbeats every 500 ms (default 2000): a restarted broker is unfenced sooner, and a live one is never fenced
# on a loaded machine; a killed broker is fenced 9.0-9.5 s after its kill (the simulator's: 7-9 s).
SESSION_TIMEOUT_MS = 9000
HEARTBEAT_INTERVAL_MS = 500


def broker_properties(node_id: int, port: int, controller_port: int, log_dir: Path, brokers: int,
                      overrides: dict[str, str]) -> dict[str, str]:
    """The single broker's test profile (``server_properties``), as a broker-only node of an N-broker cluster:
    internal topics replicated on every broker (transactions with min ISR 2, as Kafka's defaults)."""
    props = server_properties(port, controller_port, log_dir, {})
    props.update({
        "process.roles": "broker",
        "node.id": str(node_id),
        "controller.quorum.voters": f"{CONTROLLER_ID}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "default.replication.factor": str(brokers),
        "offsets.topic.replication.factor": str(brokers),
        "transaction.state.log.replication.factor": str(brokers),
        "transaction.state.log.min.isr": str(min(2, brokers)),
        "share.coordinator.state.topic.replication.factor": str(brokers),
        "share.coordinator.state.topic.min.isr": str(min(2, brokers)),
        "broker.heartbeat.interval.ms": str(HEARTBEAT_INTERVAL_MS),
        # Fewer threads: four JVMs on two cores.
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
    })
    props.update(overrides)
    return props


def controller_properties(port: int, log_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
    """The controller-only node. Topic defaults it applies at creation and election (min.insync.replicas,
    unclean.leader.election.enable) are read from its config, so ``overrides`` go here too."""
    props = {
        "process.roles": "controller",
        "node.id": str(CONTROLLER_ID),
        "controller.quorum.voters": f"{CONTROLLER_ID}@127.0.0.1:{port}",
        "listeners": f"CONTROLLER://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dir),
        "broker.session.timeout.ms": str(SESSION_TIMEOUT_MS),
        "num.io.threads": "2",
        "background.threads": "2",
    }
    props.update(overrides)
    return props


class _Node:
    """One JVM of the cluster: its directory (config, log, data) and process."""

    def __init__(self, node_id: int, root: Path) -> None:
        self.node_id = node_id
        self.dir = root / ("controller" if node_id == CONTROLLER_ID else f"broker-{node_id}")
        self.dir.mkdir()
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self._log = None

    @property
    def config(self) -> Path:
        return self.dir / "server.properties"

    @property
    def log_path(self) -> Path:
        return self.dir / "server.log"

    def java_cmd(self, java: str, libs: Path, main: str, *args: str) -> list[str]:
        log4j = RUNTIME_DIR / "log4j2.properties"
        return [java, *CLUSTER_JVM_OPTS, f"-Dlog4j2.configurationFile={log4j}", f"-Dkafka.logs.dir={self.dir}",
                "-cp", f"{libs}/*", main, *args]

    def launch(self, java: str, libs: Path) -> None:
        self._log = self.log_path.open("a")
        self.proc = subprocess.Popen(self.java_cmd(java, libs, "kafka.Kafka", str(self.config)),
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent())

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        self.proc = None
        self.paused = False
        if self._log is not None:
            self._log.close()
            self._log = None


class KafkaCluster:
    """A controller (node 0) and brokers 1..N on 127.0.0.1, formatted with one cluster id."""

    def __init__(self, brokers: int = 3, version: str = DEFAULT_VERSION, overrides: dict[str, str] | None = None,
                 controller_overrides: dict[str, str] | None = None) -> None:
        self.broker_ids = tuple(range(1, brokers + 1))
        self.version = version
        self.overrides = dict(overrides or {})
        self.controller_overrides = dict(controller_overrides or {})
        self.transaction_version: int | None = None
        self.root: Path | None = None
        self.timings: dict[str, float] = {}
        self._nodes: dict[int, _Node] = {}
        self._java: str | None = None
        self._libs: Path | None = None

    @property
    def bootstrap(self) -> str:
        """Every broker: a client keeps working while any one of them is down."""
        if not self._nodes:
            raise RuntimeError("cluster not started")
        return ",".join(f"127.0.0.1:{self._nodes[b].port}" for b in self.broker_ids)

    def broker_bootstrap(self, node_id: int) -> str:
        return f"127.0.0.1:{self._nodes[node_id].port}"

    def is_running(self, node_id: int) -> bool:
        return self._nodes[node_id].running

    def log_path(self, node_id: int) -> Path:
        return self._nodes[node_id].log_path

    def pid(self, node_id: int) -> int | None:
        proc = self._nodes[node_id].proc
        return proc.pid if proc is not None else None

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def start(self, transaction_version: int = 2, timeout: float = CLUSTER_READY_TIMEOUT_S) -> KafkaCluster:
        """Format every node's directory, start every JVM, and wait until the metadata lists every broker."""
        if self._nodes:
            raise RuntimeError("cluster already started")
        self._java = _which("java")
        t0 = time.monotonic()
        self._libs = ensure_jars(self.version)
        self.timings["jars_s"] = time.monotonic() - t0
        self.transaction_version = transaction_version
        attempt = 1
        while True:
            try:
                self._start_once(transaction_version, timeout)
                return self
            except KafkaUnavailable:
                # Ports are picked before the JVMs bind them; another process may win the race.
                in_use = any("Address already in use" in _tail(n.log_path) for n in self._nodes.values())
                if attempt == PORT_ATTEMPTS or not in_use:
                    raise
                self._kill_all()
                shutil.rmtree(self.root, ignore_errors=True)
                self._nodes = {}
                attempt += 1

    def _start_once(self, transaction_version: int, timeout: float) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="eosim-kafka-cluster-"))
        try:
            self._format_and_start(transaction_version, timeout)
        except KafkaUnavailable:
            self._kill_all()
            raise  # the directory stays, for its logs (the reason names it)
        except BaseException:  # ^C, SIGTERM (Interrupted), a bug: nothing of this start may remain
            with shielded():
                self._kill_all()
                shutil.rmtree(self.root, ignore_errors=True)
            raise

    def _format_and_start(self, transaction_version: int, timeout: float) -> None:
        controller_port, *ports = _free_ports(1 + len(self.broker_ids))
        controller = _Node(CONTROLLER_ID, self.root)
        controller.port = controller_port
        self._nodes[CONTROLLER_ID] = controller
        self._write(controller, controller_properties(controller_port, controller.dir / "data",
                                                      self.controller_overrides))
        for node_id, port in zip(self.broker_ids, ports):
            node = _Node(node_id, self.root)
            node.port = port
            self._nodes[node_id] = node
            self._write(node, broker_properties(node_id, port, controller_port, node.dir / "data",
                                                len(self.broker_ids), self.overrides))

        # Format every directory at once (one JVM start each) with the same cluster id.
        t0 = time.monotonic()
        cluster_id = new_cluster_id()
        formats = []
        for node in self._nodes.values():
            out = (node.dir / "format.log").open("w")
            formats.append((node, out, subprocess.Popen(
                node.java_cmd(self._java, self._libs, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                              "-c", str(node.config), "--feature", f"transaction.version={transaction_version}"),
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent())))
        try:
            failed = []
            for node, out, proc in formats:
                if proc.wait() != 0:
                    failed.append(f"node {node.node_id} (exit {proc.returncode}):\n{_tail(node.dir / 'format.log')}")
        finally:
            for _, out, proc in formats:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                out.close()
        self.timings["format_s"] = time.monotonic() - t0
        if failed:
            raise KafkaUnavailable(f"StorageTool format failed; directory kept at {self.root}\n" + "\n".join(failed))

        t0 = time.monotonic()
        for node in self._nodes.values():
            node.launch(self._java, self._libs)
        self._wait_brokers(self.bootstrap, set(self.broker_ids), t0 + timeout)
        self.timings["start_s"] = time.monotonic() - t0

    @staticmethod
    def _write(node: _Node, props: dict[str, str]) -> None:
        node.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    def _wait_brokers(self, bootstrap: str, expected: set[int], deadline: float) -> None:
        """Until a Metadata answer from ``bootstrap`` lists ``expected``. A broker serves clients only once the
        controller unfenced it (docs/real-kafka.md, Readiness), and Metadata lists only unfenced brokers."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": bootstrap, "reconnect.backoff.ms": 50,
                             "reconnect.backoff.max.ms": 250, "log_level": 0})
        last = "no answer yet"
        while time.monotonic() < deadline:
            dead = [n for n in self._nodes.values() if n.proc is not None and n.proc.poll() is not None]
            if dead:
                raise KafkaUnavailable(self._failure(f"node {dead[0].node_id} exited with code "
                                                     f"{dead[0].proc.returncode}", dead[0]))
            try:
                md = admin.list_topics(timeout=1.0)
            except KafkaException as exc:
                last = str(exc)
                continue
            if expected <= set(md.brokers):
                return
            last = f"metadata lists brokers {sorted(md.brokers)}"
        raise KafkaUnavailable(self._failure(f"brokers {sorted(expected)} not all ready before the deadline; "
                                             f"last: {last}", None))

    def _failure(self, what: str, node: _Node | None) -> str:
        nodes = [node] if node is not None else list(self._nodes.values())
        tails = "\n".join(f"--- {n.log_path}:\n{_tail(n.log_path, 30)}" for n in nodes)
        return f"{what}; directory kept at {self.root}\n{tails}"

    def kill(self, node_id: int) -> None:
        """SIGKILL a broker's JVM: no controlled shutdown, open connections reset, its log directory stays."""
        node = self._broker(node_id)
        if not node.running:
            raise RuntimeError(f"broker {node_id} is not running")
        t0 = time.monotonic()
        node.kill()
        self.timings["kill_s"] = time.monotonic() - t0

    def pause(self, node_id: int) -> None:
        """SIGSTOP a broker's JVM: it neither fetches nor heartbeats until ``resume`` (the controller fences it if
        that takes longer than the session timeout)."""
        node = self._broker(node_id)
        if not node.running or node.paused:
            raise RuntimeError(f"broker {node_id} is not running unpaused")
        node.proc.send_signal(signal.SIGSTOP)
        node.paused = True

    def resume(self, node_id: int) -> None:
        node = self._broker(node_id)
        if not node.running or not node.paused:
            raise RuntimeError(f"broker {node_id} is not paused")
        node.proc.send_signal(signal.SIGCONT)
        node.paused = False

    def is_paused(self, node_id: int) -> bool:
        return self._nodes[node_id].paused

    def restart(self, node_id: int, timeout: float = CLUSTER_READY_TIMEOUT_S) -> None:
        """Start a killed broker's JVM again on the same directory and ports, and wait until it serves metadata
        (its registration is refused until the controller expired the old incarnation's session)."""
        node = self._broker(node_id)
        if node.running:
            raise RuntimeError(f"broker {node_id} is running")
        t0 = time.monotonic()
        node.launch(self._java, self._libs)
        try:
            self._wait_brokers(self.broker_bootstrap(node_id), {node_id}, t0 + timeout)
        except BaseException:
            node.kill()
            raise
        self.timings["restart_s"] = time.monotonic() - t0

    def _broker(self, node_id: int) -> _Node:
        if node_id not in self.broker_ids:
            raise ValueError(f"no broker {node_id}; brokers are {self.broker_ids}")
        return self._nodes[node_id]

    def _kill_all(self) -> None:
        for node in self._nodes.values():
            node.kill()

    def stop(self, keep_data: bool = False) -> None:
        """SIGKILL every JVM and remove the directory. The data is thrown away, so a controlled shutdown (which
        moves leadership broker by broker) would only cost time."""
        if not self._nodes:
            return
        with shielded():
            t0 = time.monotonic()
            self._kill_all()
            self.timings["stop_s"] = time.monotonic() - t0
            self._nodes = {}
            if not keep_data and self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> KafkaCluster:
        if not self._nodes:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eosim._realkafka.cluster")
    parser.add_argument("--brokers", type=int, default=3)
    parser.add_argument("--version", default=DEFAULT_VERSION)
    parser.add_argument("--transaction-version", type=int, default=2)
    args = parser.parse_args(argv)
    with cleanup_on_signals():
        cluster = KafkaCluster(args.brokers, args.version)
        started = False
        try:
            cluster.start(transaction_version=args.transaction_version)
            started = True
            print(cluster.bootstrap, flush=True)
            print(f"directory {cluster.root}, timings {cluster.timings}", file=sys.stderr, flush=True)
            while all(cluster.is_running(n) for n in (CONTROLLER_ID, *cluster.broker_ids)):
                time.sleep(0.5)
            return 1  # a node died on its own
        except Interrupted as exc:
            return 0 if started else 128 + exc.signum  # stopped as asked / during the start
        except KafkaUnavailable as exc:
            print(f"error: {exc.reason}", file=sys.stderr)
            return 1
        finally:
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
