"""``eosim conform --start-kafka`` stopped by a signal leaves nothing behind: no JVM, actor,
forkserver or resource-tracker process, no listening broker port, no temporary directory
(issue 13). Even SIGKILL, after which no cleanup runs, leaves no process behind (only directories). Each case runs the command in a subprocess with its own TMPDIR, waits for a moment
of its run, signals it, and checks what remains.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eosim._realkafka.broker import KafkaUnavailable, ToolMissing, ensure_jars

IN_CI = os.environ.get("CI") == "true"
WAIT_S = 120.0  # for the moment to come, and for the command to end: a bound, not a measurement


@pytest.fixture(scope="module")
def jars():
    try:
        return ensure_jars()
    except ToolMissing as exc:
        if IN_CI:
            pytest.fail(f"CI=true and no broker: {exc.reason}", pytrace=False)
        pytest.skip(exc.reason)
    except KafkaUnavailable as exc:
        pytest.fail(exc.reason, pytrace=False)


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(ppid, state, start time) of a live process, from /proc/PID/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), fields[0], int(fields[19])


def _descendants(root: int) -> dict[int, tuple[int, str]]:
    """pid -> (start time, command line) of every live descendant of ``root``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            children.setdefault(st[0], []).append(int(entry))
    found, todo = {}, list(children.get(root, []))
    while todo:
        pid = todo.pop()
        st = _stat(pid)
        if st is None:
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = "?"
        found[pid] = (st[2], cmd)
        todo += children.get(pid, [])
    return found


def _alive(pid: int, start: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"


def _wait_for(what: str, predicate, proc: subprocess.Popen, out: Path):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if (value := predicate()) is not None:
            return value
        if proc.poll() is not None:
            pytest.fail(f"eosim conform ended (exit {proc.returncode}) before {what}:\n{out.read_text()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no {what} within {WAIT_S} s")


def _broker_ports(tmp: Path) -> list[int]:
    ports = []
    for config in tmp.glob("eosim-kafka-*/server.properties"):
        ports += [int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)", config.read_text())]
    return ports


def _run_and_signal(tmp_path: Path, scenario: str, signum: int, moment: str, predicate) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out.txt"
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONFAULTHANDLER": "1"}  # SIGABRT dumps every thread's stack
    env.pop("EOSIM_KAFKA_BOOTSTRAP", None)
    eosim = Path(sys.executable).with_name("eosim")
    with out.open("w") as sink:
        proc = subprocess.Popen([str(eosim), "conform", "--start-kafka", scenario], cwd=tmp_path, env=env,
                                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_for(moment, lambda: predicate(proc.pid), proc, out)
        processes = _descendants(proc.pid)
        ports = _broker_ports(tmp)
        proc.send_signal(signum)
        try:
            rc = proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # where it hangs, in the output below
            proc.wait(WAIT_S)
            pytest.fail(f"eosim conform did not end within {WAIT_S} s of {signal.Signals(signum).name} "
                        f"({moment}); its threads' stacks on SIGABRT:\n{out.read_text()}")
    finally:
        if proc.poll() is None:
            proc.kill()
    report = f"{moment}, {signal.Signals(signum).name}: output:\n{out.read_text()}"
    if signum == signal.SIGKILL:
        assert rc == -signum, report
        # No cleanup can run: the broker's data dir and multiprocessing's socket dir stay (ours to remove).
        leftovers = sorted(p.name for p in tmp.iterdir())
        assert all(re.match(r"(eosim-kafka-|pymp-)", name) for name in leftovers), leftovers
        for path in tmp.iterdir():
            shutil.rmtree(path)
    else:
        assert rc == 128 + signum, report
        assert "Traceback" not in out.read_text(), report
    # Orphans end on their own once their parent is gone (the forkserver on its pipe's EOF): give them time.
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline and any(_alive(pid, start) for pid, (start, _) in processes.items()):
        time.sleep(0.05)
    left = {pid: cmd for pid, (start, cmd) in processes.items() if _alive(pid, start)}
    assert not left, f"still running: {left}\n{report}"
    for port in ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still listens\n{report}"
    assert sorted(p.name for p in tmp.iterdir()) == [], report


def _broker_starting(pid: int) -> bool | None:
    """The broker's JVM runs (formatted, not yet serving)."""
    return True if any("kafka.Kafka " in cmd for _, cmd in _descendants(pid).values()) else None


def _actor_paused(pid: int) -> bool | None:
    """An actor is SIGSTOPped by the scenario's pause step."""
    return True if any(_stat(p) is not None and _stat(p)[1] == "T" for p in _descendants(pid)) else None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_during_broker_start_leaves_nothing(jars, tmp_path, signum):
    _run_and_signal(tmp_path, "zombie-fencing", signum, "broker start", _broker_starting)


def test_sigterm_while_an_actor_is_paused_leaves_nothing(jars, tmp_path):
    _run_and_signal(tmp_path, "fault-pause-zombie-fenced", signal.SIGTERM, "a paused actor", _actor_paused)


def test_sigkill_while_an_actor_is_paused_leaves_no_process(jars, tmp_path):
    _run_and_signal(tmp_path, "fault-pause-zombie-fenced", signal.SIGKILL, "a paused actor", _actor_paused)
