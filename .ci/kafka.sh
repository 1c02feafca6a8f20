#!/usr/bin/env bash
# Make the Kafka broker jars available to tests/conformance (called by .ci/run).
# Downloads from Maven Central into ~/.cache/eosim/kafka (EOSIM_KAFKA_HOME overrides);
# a complete cache is reused without running mvn.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

if ! command -v java >/dev/null; then
  echo "kafka.sh: java not found; the conformance broker needs OpenJDK 17+" >&2
  exit 1
fi
if ! "$PY" -m eosim._realkafka.broker fetch; then
  echo "kafka.sh: could not get the Kafka broker jars (reason above)" >&2
  exit 1
fi
if ! "$PY" -m eosim._realkafka.java build; then
  echo "kafka.sh: could not build the Java conformance actor (reason above)" >&2
  exit 1
fi
