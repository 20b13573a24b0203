"""SSE heartbeats spread over their interval (docs/decisions.md D866): ``SessionHub.maintain`` turns the wheel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from till_gateway.sessions import LocalSession

HEARTBEAT: Final = b""                 # queue item: write a heartbeat comment
HEARTBEAT_TICK: Final = 0.1            # seconds between two slots of the wheel


class HeartbeatWheel:
    """Every local session's heartbeat once per ``interval``, spread evenly over it (D866).

    Beating every stream at once woke all their writers in one loop pass: with 10,000 streams that
    stalled the loop 86-137 ms every interval, for every request the replica was serving.  Sessions
    are dealt round robin into ``interval / HEARTBEAT_TICK`` slots and each tick beats one slot, so
    a tick touches ``n / slots`` streams.  Any slot comes due within ``interval`` of joining, so the
    first heartbeat still follows the endpoint event within the interval (SPEC §3).  Slots hold ids;
    a session that has left ``local`` is dropped when the hand next passes its slot."""

    def __init__(self, interval: float, tick: float = HEARTBEAT_TICK) -> None:
        self.size = max(1, round(interval / tick))
        self.tick = interval / self.size
        self.slots: list[set[str]] = [set() for _ in range(self.size)]
        self.hand = 0          # the slot beaten last
        self._deal = 0         # the slot the next session joins

    def add(self, sid: str) -> None:
        self.slots[self._deal].add(sid)
        self._deal = (self._deal + 1) % self.size

    def advance(self, steps: int, local: Mapping[str, LocalSession]) -> None:
        """Beat the next ``steps`` slots (a late loop catches up, at most one full turn)."""
        for _ in range(min(steps, self.size)):
            self.hand = (self.hand + 1) % self.size
            slot = self.slots[self.hand]
            gone = []
            for sid in slot:
                session = local.get(sid)
                if session is None:
                    gone.append(sid)
                else:
                    session.push(HEARTBEAT)
            slot.difference_update(gone)

    def __len__(self) -> int:
        return sum(map(len, self.slots))
