"""Which library scenarios agree with which Kafka release: the conformance library against the oldest
and newest 4.x on Maven Central and the pinned release, on each client lane.

Usage: python experiments/version_matrix.py [--versions 4.0.0,4.1.2,4.4.0] [--clients librdkafka,java]
                                            [--transaction-version 2] [--out docs/version-matrix.md]

For every release it starts one broker (sim/_realkafka/broker.py), and for every client it runs
``eosim conform --bootstrap B --start-kafka --kafka-version V --client C --json`` over the library's
conformance scenarios, a few scenarios per process: librdkafka 2.16 now and then crashes a process
with SIGSEGV (seen in `rdk:main`, in this lane and others), which then costs one chunk, tried again
(up to 3 times). Then it writes a table of
scenario x (release, client) into ``--out``, with what each disagreement differed in. The broker of
each release is started from its Maven jars (docs/real-kafka.md); the Java client stays the pinned
release's, so a column differs from the pinned one only by the broker. The simulator runs each column
as that release (``--kafka-version``: the bugs models/bugs.py lists for it). Exit code 0 when every cell
agrees, 1 otherwise. docs/version-matrix.md holds its recorded output.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from eosim._cli import scenario_dir
from eosim._realkafka.broker import DEFAULT_VERSION, KafkaBroker, cleanup_on_signals
from eosim._scenario import load_scenario
from eosim.models.bugs import KAFKA_RELEASES
from eosim.models.config import KAFKA_VERSION_KEY

OLDEST, NEWEST = KAFKA_RELEASES[0], KAFKA_RELEASES[-1]


def _cell(row: SimpleNamespace) -> str:
    if row.agree:
        return "agree"
    if row.known:
        return "known"  # a kept difference of that lane (eosim._realkafka.known, docs/fidelity.md)
    if row.agree is None:
        return row.kafka.split(":")[0]  # skipped / not run / error
    return "**differs**"


def _ok(row: SimpleNamespace) -> bool:
    return bool(row.agree or row.known) or row.kafka.startswith("skipped")


CHUNK = 6  # scenarios per eosim conform process
ATTEMPTS = 3


def _column(paths: list[Path], bootstrap: str, version: str, client: str,
            transaction_version: int) -> list[SimpleNamespace]:
    rows: list[SimpleNamespace] = []
    for start in range(0, len(paths), CHUNK):
        command = [sys.executable, "-m", "eosim", "conform", *map(str, paths[start:start + CHUNK]),
                   "--bootstrap", bootstrap, "--start-kafka", "--kafka-version", version, "--client", client,
                   "--transaction-version", str(transaction_version), "--json"]
        for attempt in range(1, ATTEMPTS + 1):
            proc = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if proc.returncode in (0, 1) and proc.stdout.strip():
                rows += [SimpleNamespace(**row) for row in json.loads(proc.stdout)]
                break
            print(f"{version} {client}: eosim conform exited {proc.returncode} (attempt {attempt})", file=sys.stderr)
        else:
            raise SystemExit(f"{version} {client}: eosim conform failed {ATTEMPTS} times: {' '.join(command)}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=f"{OLDEST},{DEFAULT_VERSION},{NEWEST}")
    parser.add_argument("--clients", default="librdkafka,java")
    parser.add_argument("--transaction-version", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/version-matrix.md"))
    args = parser.parse_args()
    versions, clients = args.versions.split(","), args.clients.split(",")
    # A scenario that pins its release ("eosim.kafka.version") runs on that release only: not a row here.
    paths = sorted(p for p in scenario_dir().glob("*.toml") if (s := load_scenario(p)).scenario.conformance
                   and KAFKA_VERSION_KEY not in s.cluster)
    columns = [(v, c) for v in versions for c in clients]
    results: dict[tuple[str, str], dict[str, SimpleNamespace]] = {}
    seconds: dict[tuple[str, str], float] = {}
    with cleanup_on_signals():
        for version in versions:
            broker = KafkaBroker(version).start(transaction_version=args.transaction_version)
            try:
                for client in clients:
                    started = time.monotonic()
                    rows = _column(paths, broker.bootstrap, version, client, args.transaction_version)
                    seconds[(version, client)] = time.monotonic() - started
                    results[(version, client)] = {row.scenario: row for row in rows}
                    agreeing, known = sum(bool(r.agree) for r in rows), sum(r.known for r in rows)
                    print(f"{version} {client}: {agreeing}/{len(rows)} agree, {known} known "
                          f"({seconds[(version, client)]:.0f} s)", file=sys.stderr)
            finally:
                broker.stop()

    lines = [
        "# Version matrix: the conformance library on each Kafka release",
        "",
        f"Recorded by `python experiments/version_matrix.py` (transaction.version={args.transaction_version}) on "
        f"{os.cpu_count()} cores ({platform.machine()}, Python {platform.python_version()}). "
        f"Each column starts a broker of that release from its Maven jars; the clients are confluent-kafka "
        f"(librdkafka) and kafka-clients {DEFAULT_VERSION} in a JVM (java). The simulator runs each column as "
        "that release (`--kafka-version`: the bugs models/bugs.py lists for it, docs/historical-bugs.md). "
        "\"agree\": the simulator's observation equals Kafka's; \"known\": it differs exactly where "
        "sim/_realkafka/known.py says it does (on the Java lane, where the simulated Java client is not the "
        "real one yet: docs/fidelity.md). Scenarios that pin their release (`eosim.kafka.version`) are no rows. "
        "Rerun it after a change to the model or the library.",
        "",
        "| scenario | " + " | ".join(f"{v} {c}" for v, c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for path in paths:
        name = load_scenario(path).name
        lines.append(f"| {name} | " + " | ".join(_cell(results[col][name]) for col in columns) + " |")
    totals = [f"{sum(bool(r.agree) for r in results[col].values())}/{len(paths)}" for col in columns]
    agree_or_known = [f"{sum(bool(r.agree or r.known) for r in results[col].values())}/{len(paths)}"
                      for col in columns]
    lines.append("| **agree** | " + " | ".join(totals) + " |")
    lines.append("| agree or known | " + " | ".join(agree_or_known) + " |")
    lines.append("| seconds | " + " | ".join(f"{seconds[col]:.0f}" for col in columns) + " |")
    details = [f"* {name}, {v} {c}: " + "; ".join(row.differences or (row.kafka,))
               for (v, c) in columns for name, row in results[(v, c)].items() if not _ok(row)]
    lines += ["", "## Unexplained differences", ""] + (details or ["None: on every release each scenario agrees "
                                                                 "or differs only where it is known to."])
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if not details else 1


if __name__ == "__main__":
    sys.exit(main())
