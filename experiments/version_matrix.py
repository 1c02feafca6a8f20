"""Which library scenarios agree with which Kafka release: the conformance library against the oldest
and newest 4.x on Maven Central and the pinned release, on each client lane.

Usage: python experiments/version_matrix.py [--versions 4.0.0,4.1.2,4.4.0] [--clients librdkafka,java]
                                            [--transaction-version 2] [--out docs/version-matrix.md]

For every (release, client) it runs ``eosim conform --start-kafka --kafka-version V --client C``
(eosim._realkafka.conform.conform) over the library's conformance scenarios, then writes a table of
scenario x (release, client) into ``--out``, with what each disagreement differed in. The broker of
each release is started from its Maven jars (docs/real-kafka.md); the Java client stays the pinned
release's, so a column differs from the pinned one only by the broker. Exit code 0 when every cell
agrees, 1 otherwise. docs/version-matrix.md holds its recorded output.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from eosim._cli import scenario_dir
from eosim._realkafka.broker import DEFAULT_VERSION, cleanup_on_signals
from eosim._realkafka.conform import Row, conform
from eosim._scenario import load_scenario

OLDEST, NEWEST = "4.0.0", "4.4.0"  # the 4.x releases on Maven Central (kafka_2.13 maven-metadata.xml, Dec 2026)


def _cell(row: Row) -> str:
    if row.agree:
        return "agree"
    if row.agree is None:
        return row.kafka.split(":")[0]  # skipped / not run / error
    return "**differs**"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=f"{OLDEST},{DEFAULT_VERSION},{NEWEST}")
    parser.add_argument("--clients", default="librdkafka,java")
    parser.add_argument("--transaction-version", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("docs/version-matrix.md"))
    args = parser.parse_args()
    versions, clients = args.versions.split(","), args.clients.split(",")
    paths = sorted(p for p in scenario_dir().glob("*.toml") if load_scenario(p).scenario.conformance)
    columns = [(v, c) for v in versions for c in clients]
    results: dict[tuple[str, str], dict[str, Row]] = {}
    seconds: dict[tuple[str, str], float] = {}
    with cleanup_on_signals():
        for version, client in columns:
            started = time.monotonic()
            rows = conform(paths, start_kafka=True, kafka_version=version, client=client,
                           transaction_version=args.transaction_version,
                           out_dir=Path("runs/version-matrix") / f"{version}-{client}")
            seconds[(version, client)] = time.monotonic() - started
            results[(version, client)] = {row.scenario: row for row in rows}
            agreeing = sum(bool(r.agree) for r in rows)
            print(f"{version} {client}: {agreeing}/{len(rows)} agree ({seconds[(version, client)]:.0f} s)",
                  file=sys.stderr)

    lines = [
        "# Version matrix: the conformance library on each Kafka release",
        "",
        f"Recorded by `python experiments/version_matrix.py` (transaction.version={args.transaction_version}) on "
        f"{platform.node() or 'a machine'} ({platform.machine()}, Python {platform.python_version()}). "
        f"Each column starts a broker of that release from its Maven jars; the clients are confluent-kafka "
        f"(librdkafka) and kafka-clients {DEFAULT_VERSION} in a JVM (java). \"agree\": the simulator's "
        "observation equals Kafka's. Rerun it after a change to the model or the library.",
        "",
        "| scenario | " + " | ".join(f"{v} {c}" for v, c in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for path in paths:
        name = load_scenario(path).name
        lines.append(f"| {name} | " + " | ".join(_cell(results[col][name]) for col in columns) + " |")
    totals = [f"{sum(bool(r.agree) for r in results[col].values())}/{len(paths)}" for col in columns]
    lines.append("| **agree** | " + " | ".join(totals) + " |")
    lines.append("| seconds | " + " | ".join(f"{seconds[col]:.0f}" for col in columns) + " |")
    details = [f"* {name}, {v} {c}: " + "; ".join(row.differences or (row.kafka,))
               for (v, c) in columns for name, row in results[(v, c)].items() if not row.ok]
    lines += ["", "## Differences", ""] + (details or ["None: every scenario agrees on every release."])
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if not details else 1


if __name__ == "__main__":
    sys.exit(main())
