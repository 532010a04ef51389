"""Who may connect: the shared token (``RTPLOT_AUTH_TOKEN``)."""

import hmac
from typing import Any
from urllib.parse import parse_qs


def token_matches(expected: str | None, auth: Any, query_string: str) -> bool:
    """No token configured admits everyone; otherwise the client's ``auth`` payload
    ``{"token": ...}`` or its ``?token=`` query parameter must match exactly."""
    if not expected:
        return True
    offered = auth.get("token") if isinstance(auth, dict) else None
    if offered is None:
        offered = parse_qs(query_string).get("token", [None])[0]
    return isinstance(offered, str) and hmac.compare_digest(offered.encode(), expected.encode())
