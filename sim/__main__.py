"""``python -m eosim`` is the ``eosim`` command."""

from eosim._cli import main

main()
