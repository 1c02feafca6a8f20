"""experiments/fuzz_cli.py: ``eosim run FILE`` on thousands of malformed and extreme scenario files.

    python -m eosim.experiments.fuzz_cli [--inputs 10000] [--seed 1] [--subprocess 100] [--out DIR]

Three kinds of input (needs the ``test`` extra, for hypothesis-jsonschema):

- ``schema``: documents drawn from the scenario JSON Schema by hypothesis-jsonschema, table by table,
  either whole or spliced into a library scenario;
- ``document``: a library scenario with one to three of its values deleted, renamed, duplicated or
  replaced by an extreme one (huge, negative or 64-bit-overflowing integers, 1e400, NaN, wrong types,
  long strings, deep arrays, durations and partition counts past the limits);
- ``text``: a library scenario's text with lines edited: a value made hostile (5,000 nested brackets,
  a 5,000-digit integer, inf, dates ...), a line inserted, unicode spliced in, or the file truncated;
- ``stretched`` (one in 200): a library scenario pushed to what it may legally reach (every duration at
  the maximum, a nemesis striking every 2 ms, 990 more partitions): it must load, run and end.

Each input is a file ``NAME.toml`` run by the real CLI command in-process (typer's runner, so that
10,000 runs take minutes, not hours), with a wall-clock alarm that would catch a hang; every
``--subprocess``-th one is run again as a real ``python -m eosim run`` process, and the two exit codes
must agree. The report counts the outcomes (exit 0/1/2 for inputs that load and run, 254 for bad
input, whether the message is located, anything else is an escape), and the largest simulated time,
event count and wall time of a run against the limits of docs/scenario-format.md. docs/robustness.md
records a run.
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import simpy
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from eosim import _runner
from eosim import _scenario as sc
from eosim._cli import app, scenario_dir

WALL_LIMIT_S = 300  # an input still running after this is reported as a hang
LIBRARY = sorted(scenario_dir().glob("*.toml"))

# --- TOML emission -----------------------------------------------------------------------------------


def toml(value: Any) -> str:
    """A TOML value, tables inline (strings and keys quoted as basic strings; None dropped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)  # TOML spells floats as Python does: inf, -inf and nan included
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # TOML forbids a raw DEL
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value if v is not None) + "]"
    return "{" + ", ".join(f"{toml(k)} = {toml(v)}" for k, v in value.items() if v is not None) + "}"


def toml_document(doc: dict, header: str = "# h\n") -> str:
    return header + "".join(f"{toml(k)} = {toml(v)}\n" for k, v in doc.items() if v is not None)


# --- hostile values ----------------------------------------------------------------------------------

# TOML literals for the text mutations
HOSTILE_LITERALS = [
    *("[" * n + "]" * n for n in (30, 400, 5000)), "{ a = " * 3000 + "1" + " }" * 3000,
    "1" * 5000, "-" + "9" * 4301, "0x" + "f" * 5000, "9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "1e400", "-1e400", "1e-400", "nan", "+inf", "-inf", "-0.0", "0.1", "1_000",
    "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27", "true", "[]", "{}", '[1, "a", 2.5]', "{ x = 1 }",
    '"' + "v" * 20_000 + '"', r'"\u0000"', '"\u202e\U0001F600"', '"é"', "'''a\nb'''", '""', '"NONE"',
    "3600001", "1000000000", "100000000", "2", "0", "-1",
]
# Python values for the document mutations
EXTREME_VALUES: list[Any] = [
    -1, 0, 1, 2, 7, 999, 1000, 1001, 3_600_000, 3_600_001, 10**9, 10**9 + 1, 2**31, 2**63 - 1, 2**63,
    -(2**63) - 1, 10**30, 10**100, float("inf"), float("-inf"), float("nan"), 1.5, -0.0,
    "", "x" * (sc.MAX_STRING + 1), "é\u202e", "\U0001F600", "NONE", "p1", "c1", "nemesis", "broker-1",
    "until-healed", "beginning", True, False, [], [1, "a"], {}, {"x": 1}, [[[[]]]],
]


def _positions(node: Any, found: list) -> list:
    """Every (container, key) in a document tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        found.append((node, key))
        _positions(child, found)
    return found


def mutate_document(rng: random.Random, doc: dict) -> dict:
    doc = copy.deepcopy(doc)
    for _ in range(rng.randint(1, 3)):
        spots = _positions(doc, [])
        if not spots:
            break
        container, key = rng.choice(spots)
        action = rng.choice(["replace", "replace", "replace", "delete", "rename", "insert", "duplicate"])
        if action == "replace":
            container[key] = copy.deepcopy(rng.choice(EXTREME_VALUES))
        elif action == "delete":
            del container[key]
        elif action == "rename" and isinstance(container, dict):
            container[rng.choice(["x", "ms", "count", "partition", "op", "é", ""])] = container.pop(key)
        elif action == "insert" and isinstance(container, dict):
            container[rng.choice(["ms", "timeout_ms", "partitions", "nowait", "zz"])] = rng.choice(EXTREME_VALUES)
        elif action == "duplicate" and isinstance(container, list):
            for _ in range(rng.choice([1, 1, 2, 200])):
                container.insert(key, copy.deepcopy(container[key]))
    return doc


DURATIONS = ("ms", "timeout_ms", "down_ms", "load_ms")


def stretch(rng: random.Random, doc: dict) -> dict:
    """A library scenario pushed to the limits it may legally reach: every duration at the maximum, or
    a random nemesis striking every few ms, or the most partitions (the run must still end)."""
    doc = copy.deepcopy(doc)
    doc["scenario"]["conformance"] = False
    how = rng.choice(["durations", "nemesis", "partitions"])
    if how == "durations":
        for step in doc["steps"]:
            for key in DURATIONS:
                if key in step:
                    step[key] = sc.MAX_MS
    elif how == "nemesis":
        doc["nemesis"] = {"interval_ms": 2, "duration_ms": rng.choice([2, 50, 1000])}
        doc["steps"].append({"actor": "nemesis", "op": "sleep", "ms": sc.MAX_MS})
    else:
        doc.setdefault("topics", []).append({"name": "many", "partitions": sc.MAX_PARTITIONS - 10})
    return doc


def mutate_text(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines)) if lines else 0
        line = lines[i] if lines else ""
        edit = rng.choice(["value", "value", "insert", "unicode", "truncate", "delete", "garbage"])
        if edit == "value" and " = " in line:
            lines[i] = line.split(" = ")[0] + " = " + rng.choice(HOSTILE_LITERALS)
        elif edit == "insert":
            key = rng.choice(["ms", "timeout_ms", "partitions", "seed", '"linger.ms"', "count", "x"])
            lines.insert(i, f"{key} = {rng.choice(HOSTILE_LITERALS)}")
        elif edit == "unicode":
            at = rng.randint(0, len(line))
            lines[i : i + 1] = [line[:at] + rng.choice(["é", "\u202e", "\U0001F600", "\x00", "\ufeff", "\r"])
                                + line[at:]]
        elif edit == "truncate":
            joined = "\n".join(lines)
            lines = joined[: rng.randint(0, len(joined))].splitlines()
        elif edit == "delete" and lines:
            del lines[i]
        elif edit == "garbage":
            lines.insert(i, rng.choice(["[", "]]", "=", "[[steps]", '"""', "[steps]", "[actors.p1]", "a.b.c = 1"]))
    return "\n".join(lines) + rng.choice(["", "\n"])


# --- documents from the JSON Schema ------------------------------------------------------------------
# Drawn table by table (a strategy for the whole schema spends seconds per document merging its oneOfs).

PROPERTIES = sc.scenario_json_schema()["properties"]
STEPS_FROM_SCHEMA = st.one_of([from_schema(step) for step in PROPERTIES["steps"]["items"]["oneOf"]])
SECTIONS = {
    "scenario": from_schema(PROPERTIES["scenario"]),
    "cluster": from_schema(PROPERTIES["cluster"]),
    "topics": st.lists(from_schema(PROPERTIES["topics"]["items"]), max_size=3),
    "actors": st.dictionaries(st.sampled_from(["p1", "c1", "x"]) | st.text(max_size=4),
                              from_schema(PROPERTIES["actors"]["additionalProperties"]), max_size=3),
    "steps": st.lists(STEPS_FROM_SCHEMA, min_size=1, max_size=4),
    "faults": st.lists(from_schema(PROPERTIES["faults"]["items"]), max_size=2),
    "nemesis": from_schema(PROPERTIES["nemesis"]),
    "expect": from_schema(PROPERTIES["expect"]),
}


@st.composite
def schema_documents(draw: Callable, base: dict, name: str) -> dict:
    """A document drawn from the schema, whole, or ``base`` with one to three parts drawn from it; its
    scenario.name is ``name`` half the time (else it rarely matches the file's)."""
    if draw(st.booleans()):
        doc = {part: draw(strategy) for part, strategy in SECTIONS.items()
               if part in ("scenario", "steps") or draw(st.booleans())}
    else:
        doc = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 3))):
            part = draw(st.sampled_from(sorted(SECTIONS)))
            if part == "steps":
                doc["steps"][draw(st.integers(0, len(doc["steps"]) - 1))] = draw(STEPS_FROM_SCHEMA)
            else:
                doc[part] = draw(SECTIONS[part])
    if draw(st.booleans()):
        doc["scenario"]["name"] = name
    return doc


def _draw(strategy: st.SearchStrategy, n: int, seed: int) -> list:
    """n examples of a strategy, reproducibly for a seed."""
    found: list = []

    @hypothesis_seed(seed)
    @settings(max_examples=n, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(example: Any) -> None:
        found.append(example)

    collect()
    return found[:n]


# --- the inputs ----------------------------------------------------------------------------------------


def inputs(n: int, seed: int) -> list[tuple[str, str, str]]:
    """(kind, file stem, text): 20 % schema documents, the rest document and text mutations half and
    half, one in 200 of them stretched."""
    rng = random.Random(seed)
    bases = [(path.stem, path.read_text(encoding="utf-8")) for path in LIBRARY]
    parsed = [(stem, text, tomllib.loads(text)) for stem, text in bases]
    out = []
    n_schema = n // 5
    schema_bases = st.sampled_from(parsed).flatmap(lambda b: st.tuples(st.just(b[0]), schema_documents(b[2], b[0])))
    for stem, doc in _draw(schema_bases, n_schema, seed):
        out.append(("schema", stem, toml_document(doc)))
    while len(out) < n:
        stem, text, doc = rng.choice(parsed)
        header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
        if len(out) % 200 == 0:
            out.append(("stretched", stem, toml_document(stretch(rng, doc), header)))
        elif len(out) % 2:
            out.append(("document", stem, toml_document(mutate_document(rng, doc), header)))
        else:
            out.append(("text", stem, mutate_text(rng, text)))
    return out


# --- running them ----------------------------------------------------------------------------------------


class Hang(BaseException):
    """The wall-clock alarm: not an Exception, so that nothing on the way catches it."""


def _alarm(_signum: int, _frame: Any) -> None:
    raise Hang()


def _located(stderr: str, path: Path) -> bool:
    """One line ``eosim: FILE: LOCATION: REASON`` with a location that is not the whole document."""
    lines = stderr.strip().splitlines()
    prefix = f"eosim: {path}: "
    if len(lines) != 1 or not lines[0].startswith(prefix):
        return False
    location, sep, reason = lines[0][len(prefix):].partition(": ")
    return bool(sep and reason and location and location != "document")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--subprocess", type=int, default=100, help="how many inputs also run as a process")
    parser.add_argument("--out", type=Path, default=Path("runs/fuzz-cli"), help="report and escaping inputs")
    args = parser.parse_args(argv)

    from typer.testing import CliRunner

    events = [0]
    step = simpy.Environment.step

    def counted(env: simpy.Environment) -> None:
        events[0] += 1
        step(env)

    simpy.Environment.step = counted  # the runner's event budget wraps this one
    runs: list[dict[str, Any]] = []
    simulate = _runner.simulate

    def measured(*a: Any, **kw: Any) -> Any:
        run = simulate(*a, **kw)
        runs.append({"sim_ms": run.world.now, "events": events[0], "completed": run.completed})
        return run

    _runner.simulate = measured
    signal.signal(signal.SIGALRM, _alarm)

    start = time.perf_counter()
    cases = inputs(args.inputs, args.seed)
    print(f"{len(cases)} inputs generated in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    runner = CliRunner()
    outcomes: Counter[str] = Counter()
    by_kind: Counter[tuple[str, str]] = Counter()
    mismatches, slowest, escapes = [], (0.0, ""), []
    sample_every = max(1, len(cases) // args.subprocess) if args.subprocess else 0
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="eosim-fuzz-"))
    try:
        for i, (kind, stem, text) in enumerate(cases):
            case_dir = work / str(i)
            case_dir.mkdir()
            path = case_dir / f"{stem}.toml"
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
            events[0] = 0
            began = time.perf_counter()
            signal.alarm(WALL_LIMIT_S)
            try:
                result = runner.invoke(app, ["run", str(path), "--out", str(case_dir / "run"), "--json"])
                code = result.exit_code
                stderr = result.stderr
            except Hang:
                code, stderr = None, ""
            finally:
                signal.alarm(0)
            wall = time.perf_counter() - began
            slowest = max(slowest, (wall, f"{kind} {i}"))
            if code is None:
                outcome = "hang"
            elif code == 254:
                outcome = "254 located" if _located(stderr, path) else "254 NOT located"
            elif code in (0, 1, 2):
                outcome = f"ran, exit {code}"
            else:
                outcome = f"ESCAPE, exit {code}"
            outcomes[outcome] += 1
            by_kind[kind, outcome] += 1
            if outcome not in ("254 located", "ran, exit 0", "ran, exit 1", "ran, exit 2"):
                keep = args.out / "escapes" / str(i) / f"{stem}.toml"  # the name the scenario must have
                keep.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, keep)
                last = (stderr or result.output).strip().splitlines()[-1:] if code is not None else ["hang"]
                escapes.append({"input": str(keep), "outcome": outcome, "last_line": last[0][:300] if last else ""})
            if sample_every and i % sample_every == 1:  # an odd index: never a stretched input
                try:
                    proc = subprocess.run([sys.executable, "-m", "eosim", "run", str(path), "--out",
                                           str(case_dir / "proc"), "--json"], capture_output=True, text=True,
                                          timeout=WALL_LIMIT_S)
                    again, located = proc.returncode, _located(proc.stderr, path)
                except subprocess.TimeoutExpired:
                    again, located = None, False
                if again != code or (code == 254 and not located):
                    mismatches.append({"input": i, "in_process": code, "process": again})
                outcomes["(process sample)"] += 1
            shutil.rmtree(case_dir)
            if (i + 1) % 500 == 0:
                print(f"  {i + 1}/{len(cases)} {dict(outcomes)}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    over = [r for r in runs if r["sim_ms"] > sc.MAX_SIM_MS or r["events"] > sc.MAX_EVENTS]
    report = {
        "inputs": len(cases), "seed": args.seed, "seconds": round(time.perf_counter() - start),
        "outcomes": dict(sorted(outcomes.items())),
        "by_kind": {f"{k} / {o}": n for (k, o), n in sorted(by_kind.items())},
        "runs": len(runs), "runs_incomplete": sum(not r["completed"] for r in runs),
        "max_sim_ms": max((r["sim_ms"] for r in runs), default=0), "limit_sim_ms": sc.MAX_SIM_MS,
        "max_events": max((r["events"] for r in runs), default=0), "limit_events": sc.MAX_EVENTS,
        "runs_over_limits": len(over), "slowest_input_s": round(slowest[0], 1), "slowest_input": slowest[1],
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "process_sample_mismatches": mismatches, "escapes": escapes,
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))
    bad = len(escapes) + len(over) + len(mismatches)
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
