"""The baseline for the fan-out benchmark: stock python-socketio, as its docs set it up.

    .venv/bin/python -m bench.stock_gateway PORT REDIS_URL

An ``AsyncServer`` with an ``AsyncRedisManager`` under uvicorn's defaults, whose
``subscribe`` handler only enters the symbol's room for the updates asked for (whole
figures, or deltas). No limits, no metrics, none
of rtplot's changes to the fan-out path: what rtplot's gateway is measured against.
"""

import sys
from typing import Any

import socketio
import uvicorn

from common.contract.keys import Keys
from common.contract.rooms import Mode, Room
from common.messages import OrjsonCodec


def app(redis_url: str) -> Any:
    manager = socketio.AsyncRedisManager(redis_url, channel=Keys().socketio_channel)
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=manager, json=OrjsonCodec)

    @sio.on("subscribe")  # type: ignore[untyped-decorator]
    async def subscribe(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        mode = Mode.DELTA if data.get("updates") == "delta" else Mode.FIGURE
        await sio.enter_room(sid, Room(str(data["symbol"]).upper(), mode).name)
        return {"ok": True, "symbol": data["symbol"]}

    async def healthz(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return socketio.ASGIApp(sio, other_asgi_app=healthz)


if __name__ == "__main__":
    port, redis_url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(app(redis_url), host="127.0.0.1", port=port, log_level="warning")
