"""The scenario library (``scenarios/*.toml``, package data) and the reproducible studies of eosim."""
