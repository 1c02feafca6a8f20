"""eosim.models.effects
==============

The effect every model shares: answer a request. Each coordinator defines its other effects itself.
"""

from __future__ import annotations

from eosim.models.values import frozen


@frozen(kw_only=True)
class Respond:
    """Send ``response`` back for the request with ``correlation_id`` (exactly one per request)."""

    correlation_id: int
    response: object
