"""The connections this gateway admitted, what each may do, and when each one's session
ends (a JWT's ``exp``): a client whose token expired is closed, and reconnects with a
new one."""

import heapq
import math

from gateway import metrics
from gateway.auth import Grant


class Sessions:
    def __init__(self) -> None:
        self.grants: dict[str, Grant] = {}  # sid -> what it may do
        self.endings: list[tuple[float, str]] = []  # (when a session ends, sid): a heap

    def open(self, sid: str, grant: Grant) -> None:
        self.grants[sid] = grant
        if math.isfinite(grant.expires):
            heapq.heappush(self.endings, (grant.expires, sid))
        metrics.CLIENTS.inc()

    def close(self, sid: str) -> None:
        if self.grants.pop(sid, None) is not None:
            metrics.CLIENTS.dec()

    def allows(self, sid: str, symbol: str) -> bool:
        return self.grants.get(sid, Grant()).allows(symbol)

    def ended(self, now: float) -> list[str]:
        """Connections whose session has ended (their token expired) by ``now``."""
        gone = []
        while self.endings and self.endings[0][0] <= now:
            _, sid = heapq.heappop(self.endings)
            if sid in self.grants:
                gone.append(sid)
        return gone

    def __len__(self) -> int:
        return len(self.grants)
