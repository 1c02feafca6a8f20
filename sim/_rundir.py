"""eosim._rundir
============

Run directories (docs/cli.md): where ``eosim run`` writes a run (and ``eosim study`` a study), how
eosim recognises one, and reading one back with a clear one-line error for anything that is not what
eosim wrote.

- Default place: ``runs/NAME/<UTC timestamp>-seed-N`` (a study: ``runs/studies/NAME/<UTC timestamp>``),
  plus a ``latest`` symlink beside it, as Jepsen's store does. The wall clock names the directory only; it never reaches the simulation.
- A run directory holds a marker file, ``.eosim-run`` (JSON: the format, what ran (the scenario and
  seed, or the study and its seeds) and the names of the files eosim wrote). eosim replaces a directory only when the marker is there and
  every file in the directory is one the marker lists: it never deletes what it did not create.
- Writes are atomic: every file goes into a temporary sibling, which is then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Union

from attrs import frozen

from eosim._trace import TraceSchemaError, from_dict

MARKER = ".eosim-run"
FORMAT = 1
LATEST = "latest"


class RunDirError(Exception):
    """A run directory (or a place for one) that eosim must refuse: printed as one line, exit 254."""


# A file's contents: text, its lines (a long trace streams), bytes, or a function writing the file at
# the path it is given (a plot)
Contents = Union[str, bytes, Iterable[str], Callable[[Path], Any]]


def default_path(root: Path, scenario: str, seed: int | None = None) -> Path:
    """``root/scenario/<UTC timestamp>-seed-N`` (no seed: ``root/scenario/<UTC timestamp>``); sorts
    chronologically, like Jepsen's store."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
    return root / scenario / (stamp if seed is None else f"{stamp}-seed-{seed}")


def check_target(where: str | Path, *, replace: bool) -> None:
    """Refuse a place eosim must not write a run directory to (checked before running, and again
    just before writing). ``replace``: an existing eosim run directory there may be replaced."""
    if str(where) == "":  # Path("") is ".": the string must be checked before it becomes a path
        raise RunDirError("--out is empty: give the directory to write the run to")
    out = Path(where)
    if out.is_symlink():
        raise RunDirError(f"{out}: is a symbolic link; give the run directory itself")
    if not out.exists():
        if out.parent.exists() and not out.parent.is_dir():
            raise RunDirError(f"{out.parent}: exists and is not a directory")
        return
    if not out.is_dir():
        raise RunDirError(f"{out}: exists and is not a directory; not touching it")
    here = Path.cwd().resolve()
    if out.resolve() in (here, *here.parents):
        raise RunDirError(f"{out}: is the current directory or one of its parents; give a new directory")
    if not any(out.iterdir()):
        return  # an empty directory: nothing in it to lose
    if not replace:
        raise RunDirError(f"{out}: already exists")
    written = _marker_files(out)
    if written is None:
        raise RunDirError(f"{out}: exists and is not an eosim run directory (no {MARKER} marker); not replacing it")
    foreign = sorted(p.name for p in out.iterdir() if p.name != MARKER and (p.name not in written or not p.is_file()))
    if foreign:
        raise RunDirError(f"{out}: holds files eosim did not write ({', '.join(foreign)}); not replacing it")


def _marker_files(run_dir: Path) -> set[str] | None:
    try:
        marker = json.loads((run_dir / MARKER).read_text(encoding="utf-8"))
        return {str(name) for name in marker["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(out: Path, files: Mapping[str, Contents], *, replace: bool, **about: Any) -> Path:
    """Write a run directory atomically and return where it went; ``about`` (what ran: scenario and
    seed, or study and seeds) goes into the marker. A default-place ``out`` that already exists (two
    runs in one millisecond) gets a ``-2``, ``-3``... suffix (``replace=False``)."""
    if replace:
        check_target(out, replace=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(out, "tmp")
    tmp.mkdir()
    try:
        for name, text in files.items():
            if callable(text):
                text(tmp / name)
            elif isinstance(text, bytes):
                (tmp / name).write_bytes(text)
            else:
                with open(tmp / name, "w", encoding="utf-8") as f:
                    f.writelines([text] if isinstance(text, str) else text)  # a long trace streams line by line
        marker = {"format": FORMAT, **about, "files": sorted(files)}
        (tmp / MARKER).write_text(json.dumps(marker, sort_keys=True) + "\n", encoding="utf-8")
        if not replace:
            out = _free_name(out)
        _swap_in(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def store(files: Mapping[str, Contents], *, out: str | Path | None, default: Path, **about: Any) -> tuple[Path, str | None]:
    """Write a run directory to ``out`` (replacing only an earlier eosim run directory there) or, with
    no ``out``, to the ``default`` place with ``latest`` beside it pointing at it. Returns where it
    went and, when ``latest`` is not eosim's to replace, a warning (the run is written all the same)."""
    written = write(Path(out) if out is not None else default, files, replace=out is not None, **about)
    if out is not None:
        return written, None
    try:
        link_latest(written)
    except RunDirError as err:
        return written, str(err)
    return written, None


def _free_name(out: Path) -> Path:
    n, free = 1, out
    while free.exists() or free.is_symlink():
        n += 1
        free = out.with_name(f"{out.name}-{n}")
    return free


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` (empty, or a run directory check_target
    accepted) is moved aside first and deleted only once the new one is in place."""
    if not out.exists() or not any(out.iterdir()):
        os.replace(tmp, out)  # rename(2) replaces an empty directory atomically
        return
    aside = _sibling(out, "old")
    os.replace(out, aside)
    os.replace(tmp, out)
    shutil.rmtree(aside)


def link_latest(run_dir: Path) -> None:
    """Point ``latest`` beside ``run_dir`` at it (relative, replaced atomically). A ``latest`` that is
    not a symlink belongs to someone else and stays."""
    latest = run_dir.parent / LATEST
    if latest.exists() and not latest.is_symlink():
        raise RunDirError(f"{latest}: exists and is not a symlink; not replacing it")
    tmp = _sibling(latest, "tmp")
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)


def add_file(run_dir: Path, name: str, text: str) -> None:
    """Write one more file into a run directory (atomically) and list it in the marker, so that
    replacing the directory later may delete it. Without a marker (a directory eosim did not mark,
    or one from before markers) an existing file of that name is not eosim's to overwrite."""
    try:
        marker = json.loads((run_dir / MARKER).read_text(encoding="utf-8"))
        listed = set(marker["files"])
    except (OSError, ValueError, KeyError, TypeError):
        marker = None
    if marker is None and (run_dir / name).exists():
        raise RunDirError(f"{run_dir}: not an eosim run directory (no {MARKER} marker); not overwriting {name}")
    _atomic_text(run_dir / name, text)
    if marker is not None and name not in listed:
        marker["files"] = sorted(listed | {name})
        _atomic_text(run_dir / MARKER, json.dumps(marker, sort_keys=True) + "\n")


def _atomic_text(path: Path, text: str) -> None:
    tmp = _sibling(path, "tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sibling(path: Path, kind: str) -> Path:
    """A fresh hidden name beside ``path`` (created with the user's umask, unlike mkdtemp's 0700)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}")


# Reading a run directory back: every problem is one line naming the file and what is wrong.

_TRACE_KEYS = {"t": int, "seq": int, "kind": str, "node": str, "data": dict}
_HISTORY_KEYS = {"f": str, "index": int, "type": str, "time": int}
_HISTORY_TYPES = ("invoke", "ok", "fail", "info")


def read_text(path: Path) -> str:
    if not path.is_file():
        raise RunDirError(f"{path}: missing" if not path.exists() else f"{path}: not a regular file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise RunDirError(f"{path}: not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x})") from None
    except OSError as err:
        raise RunDirError(f"{path}: cannot read it ({err.strerror})") from None


def read_events(path: Path, what: str) -> list[Any]:
    """A JSON-lines file of trace events (``what="trace"``: typed events, each line checked against its
    kind's class) or history ops (``what="history"``: dicts, each checked for the fields the checkers read)."""
    text = read_text(path)
    keys = _TRACE_KEYS if what == "trace" else _HISTORY_KEYS
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError as err:
            raise RunDirError(f"{path}:{number}: not JSON ({err.msg})") from None
        if not isinstance(event, dict):
            raise RunDirError(f"{path}:{number}: expected a JSON object, got {type(event).__name__}")
        for key, kind in keys.items():
            if not isinstance(event.get(key), kind) or isinstance(event.get(key), bool):
                raise RunDirError(f"{path}:{number}: field {key!r} must be {_KIND[kind]}, got {event.get(key)!r:.40}")
        if what == "history" and event["type"] not in _HISTORY_TYPES:
            raise RunDirError(f"{path}:{number}: type must be one of {', '.join(_HISTORY_TYPES)}, got {event['type']!r:.40}")
        if what == "trace":
            try:
                event = from_dict(event)
            except (TraceSchemaError, ValueError) as err:  # ValueError: a negative partition
                raise RunDirError(f"{path}:{number}: {err}") from None
        events.append(event)
    if not events:
        raise RunDirError(f"{path}: empty; a run's {what} has at least one {'event' if what == 'trace' else 'operation'}")
    return events


_KIND = {int: "an integer", str: "a string", dict: "an object"}


@frozen
class RunDir:
    """A run directory's inputs, read and checked: enough to replay it."""

    path: Path
    scenario_name: str
    scenario_text: str
    seed: int
    trace_text: str


def read(run_dir: Path) -> RunDir:
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: not a directory" if run_dir.exists() else f"{run_dir}: no such directory")
    results_path = run_dir / "results.json"
    try:
        results = json.loads(read_text(results_path))
        name = results["scenario"]
    except ValueError as err:
        raise RunDirError(f"{results_path}: not JSON ({err})") from None
    except (KeyError, TypeError):
        raise RunDirError(f"{results_path}: no \"scenario\" name in it") from None
    if not isinstance(name, str):
        raise RunDirError(f"{results_path}: \"scenario\" must be a string, got {name!r:.40}")
    seed_text = read_text(run_dir / "seed").strip()
    if not seed_text.isdigit():
        raise RunDirError(f"{run_dir / 'seed'}: expected a seed (an integer >= 0), got {seed_text!r:.40}")
    read_events(run_dir / "trace.jsonl", "trace")
    return RunDir(run_dir, name, read_text(run_dir / "scenario.toml"), int(seed_text),
                  read_text(run_dir / "trace.jsonl"))
