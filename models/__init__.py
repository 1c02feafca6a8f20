"""Pure (sans-I/O) state machines of Kafka's exactly-once machinery.

Nothing in this package imports SimPy, reads a clock or draws random numbers: every input is a typed
request plus the current time ``now`` (integer milliseconds), every output is a typed response or effect.
"""
