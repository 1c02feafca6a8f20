"""The public facade: everything public lives in ``eosim.*`` (an explicit ``__all__``), loads lazily,
and keeps ``import eosim`` free of SimPy (docs/api.md)."""

import subprocess
import sys

import pytest

import eosim


def test_every_public_name_resolves() -> None:
    for name in eosim.__all__:
        assert getattr(eosim, name) is not None, name


def test_unknown_names_are_attribute_errors() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        eosim.Nope  # noqa: B018


def test_public_names_are_not_private_modules() -> None:
    assert all(not name.startswith("_") or name == "__version__" for name in eosim.__all__)


def test_import_eosim_is_light() -> None:
    code = "import sys, eosim; bad = sorted(m for m in sys.modules if m == 'simpy' or m.startswith('eosim.')); " \
           "print(bad); sys.exit(1 if bad else 0)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
