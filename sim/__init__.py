"""The SimPy runtime of eosim: world, network, broker and client processes, scenarios, checkers, CLI."""
