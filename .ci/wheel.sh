#!/usr/bin/env bash
# The packaging check (called by .ci/run): build the wheel, install it into a fresh venv outside the
# checkout, and use eosim from another directory as a user would: list and run the shipped scenarios,
# run a user test that imports only `eosim`, and check that no generic top-level name (`sim`, `models`)
# is installed. Everything it makes lives in one temporary directory, removed on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
PY="${PYTHON:-python3}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/eosim-wheel-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT INT TERM

"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$ROOT"
WHEEL="$(ls "$WORK"/dist/eosim-*.whl)"
"$PY" -m venv "$WORK/venv"
VPY="$WORK/venv/bin/python"
"$VPY" -m pip install -q "${WHEEL}[test]"

mkdir "$WORK/user" && cp "$ROOT/tests/user/"*.py "$WORK/user/"
cd "$WORK/user"   # away from the checkout: only the installed wheel can answer
"$WORK/venv/bin/eosim" --version
n="$("$WORK/venv/bin/eosim" scenarios | wc -l)"
[ "$n" -eq "$(ls "$ROOT"/experiments/scenarios/*.toml | wc -l)" ] || { echo "wheel.sh: eosim scenarios lists $n" >&2; exit 1; }
"$WORK/venv/bin/eosim" run zombie-fencing --out "$WORK/user/run"
for name in models sim; do
  if "$VPY" -c "import $name" 2>/dev/null; then echo "wheel.sh: the wheel installs a top-level '$name'" >&2; exit 1; fi
done
"$VPY" -m pytest -q -p no:cacheprovider "$WORK/user"
echo "wheel.sh: the wheel works outside the checkout"
