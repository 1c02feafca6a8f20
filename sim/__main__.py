"""``python -m sim`` is the ``eosim`` command."""

from sim.cli import main

main()
