"""``eosim conform`` when it cannot run: without the conformance extra it says what to install
(exit 254); against an address where no broker listens it fails at once with one line (exit 1),
instead of librdkafka's retries and log lines (issue 13). Neither needs a broker."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

RUN_CLI = "import sys; {block}from eosim._cli import main; sys.argv = ['eosim', *sys.argv[1:]]; main()"
HINT = "pip install 'eosim[conformance]'"


def eosim(*args: str, block: str = "") -> subprocess.CompletedProcess:
    # A bound on a hang, not a timing assertion: the command must not wait for any client timeout.
    return subprocess.run([sys.executable, "-c", RUN_CLI.format(block=block), *args], capture_output=True,
                          text=True, timeout=60)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("module", ["confluent_kafka", "kafka"])
def test_without_the_extra_it_says_what_to_install(module):
    # None in sys.modules makes every import of the module fail, as when it is not installed.
    done = eosim("conform", "zombie-fencing", "--bootstrap", f"127.0.0.1:{closed_port()}",
                 block=f"sys.modules[{module!r}] = None; ")
    assert done.returncode == 254, done.stderr
    assert done.stderr.count("\n") == 1 and HINT in done.stderr and module in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_broker_fails_at_once_in_one_line():
    pytest.importorskip("confluent_kafka")
    port = closed_port()
    done = eosim("conform", "zombie-fencing", "--bootstrap", f"127.0.0.1:{port}")
    assert done.returncode == 1, done.stderr
    assert done.stderr == f"eosim: no broker: nothing listens at 127.0.0.1:{port} (127.0.0.1:{port}: Connection refused)\n"
    assert done.stdout == ""


def test_a_listener_that_is_not_kafka_fails_in_one_line():
    pytest.importorskip("confluent_kafka")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        done = eosim("conform", "zombie-fencing", "--bootstrap", f"127.0.0.1:{port}")
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(f"eosim: no broker: no Kafka broker answered at 127.0.0.1:{port} within 3 s")
    assert done.stderr.count("\n") == 1, done.stderr
