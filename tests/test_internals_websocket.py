"""The asyncio gateway's direct WebSocket path sends each client the very frames, byte for
byte and in the same order, that python-engineio's own path sends: the handshake, the
Socket.IO connect, a snapshot with its catch-up, acks, updates small and large (each
length encoding), updates of two rooms published together (read at once, and written to
the client in one write), a ping and its pong, a refusal, a client leaving a room. Three
gateways run the same script against the same Redis: the direct path, the library's
(RTPLOT_FAST_PATH=false) and the eventlet gateway."""

import base64
import os
import re
import socket
import struct
import time
import urllib.request
from collections.abc import Iterator

import orjson
import pytest
import redis

from common.contract.keys import Keys
from common.contract.packets import event_packet
from common.contract.rooms import Mode, Room
from common.messages import BARS
from rtplot.processes import Stack

pytestmark = pytest.mark.e2e

PING_INTERVAL = 3  # seconds: the script waits for the first ping, and ends before the next
SNAPSHOT = {"symbol": "AAPL", "seq": 7, "epoch": "e1", "figure": {"data": [], "layout": {}}}
CATCHUP = {"symbol": "AAPL", "seq": 9, "base_seq": 7, "epoch": "e1", "bars": [], "style": {}}
TOGETHER = 6  # updates of two rooms published in one round trip: the listener reads them at once


class RawClient:
    """A WebSocket client that keeps every frame the server sends as it came on the wire."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
                f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.frames: list[bytes] = []

    def _read(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def receive(self) -> str:
        """The next frame, kept raw; its payload as text."""
        header = self._read(2)
        size = header[1] & 0x7F
        extra = b""
        if size == 126:
            extra = self._read(2)
            size = struct.unpack("!H", extra)[0]
        elif size == 127:
            extra = self._read(8)
            size = struct.unpack("!Q", extra)[0]
        payload = self._read(size)
        self.frames.append(header + extra + payload)
        return payload.decode()

    def receive_until(self, prefix: str) -> None:
        while not self.receive().startswith(prefix):
            pass

    def send(self, text: str) -> None:
        """A masked text frame, as clients must send."""
        payload, mask = text.encode(), os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        size = len(payload)
        length = bytes([0x80 | size]) if size < 126 else bytes([0xFE]) + struct.pack("!H", size)
        self.sock.sendall(bytes([0x81]) + length + mask + masked)

    def close(self) -> None:
        self.sock.close()


def script(port: int, client: "redis.Redis") -> list[bytes]:
    """Everything a client sees in one session, the session ids masked."""
    ws = RawClient(port)
    ws.receive()  # Engine.IO open
    ws.send("40")
    ws.receive_until("40")
    ws.send('421["subscribe",{"symbol":"AAPL","updates":"delta"}]')
    ws.receive_until("431")  # the snapshot and its catch-up came first
    for size in (10, 200, 70_000):  # each length encoding: 7 bits, 16 bits, 64 bits
        delta = dict(CATCHUP, seq=10, base_seq=9, bars=[[0, 1.5, 2.5, 1.0, 2.0, size]] * size)
        packet = event_packet(BARS, orjson.dumps(delta))
        client.publish(Keys().channel(Room("AAPL", Mode.DELTA)), packet)
        ws.receive_until("42")
    ws.send('426["subscribe",{"symbol":"MSFT","updates":"delta"}]')
    ws.receive_until("436")
    together = client.pipeline(transaction=False)
    for i in range(TOGETHER):
        symbol = ("AAPL", "MSFT")[i % 2]
        delta = dict(CATCHUP, symbol=symbol, seq=20 + i, base_seq=19 + i, bars=[[i] * 6] * i)
        together.publish(
            Keys().channel(Room(symbol, Mode.DELTA)), event_packet(BARS, orjson.dumps(delta))
        )
    together.execute()
    for _ in range(TOGETHER):
        assert ws.receive().startswith('42["bars"')
    ws.send('422["nonsense",{}]')
    ws.receive_until("432")
    ws.receive_until("2")  # the server's PING
    ws.send("3")
    ws.send('423["snapshot",{"symbol":"AAPL"}]')
    ws.receive_until("433")
    ws.send('424["unsubscribe",{"symbol":"AAPL"}]')
    ws.receive_until("434")
    client.publish(Keys().channel(Room("AAPL", Mode.DELTA)), event_packet(BARS, b"{}"))
    ws.send('425["nonsense",{}]')  # a marker: nothing may come before its ack
    ws.receive_until("435")
    ws.close()
    return [mask_sids(frame) for frame in ws.frames]


def mask_sids(frame: bytes) -> bytes:
    """Session ids differ between gateways; a frame of the same length with none."""
    text = frame.decode(errors="replace")
    for marker in ('"sid":"',):
        start = text.find(marker)
        if start >= 0:
            end = text.index('"', start + len(marker))
            frame = frame[: start + len(marker)] + b"x" * (end - start - len(marker)) + frame[end:]
    return frame


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with Stack(symbols="AAPL,MSFT", ping_interval=PING_INTERVAL) as running:
        for symbol in ("AAPL", "MSFT"):
            running.client.hset(
                Keys().snapshot(symbol),
                mapping={
                    "seq": 7,
                    "payload": orjson.dumps(dict(SNAPSHOT, symbol=symbol)),
                    "catchup": orjson.dumps(dict(CATCHUP, symbol=symbol)),
                },
            )
        running.launch("direct", "gateway")
        running.launch("library", "gateway", fast_path="false")
        running.launch("eventlet", "gateway", "--mode", "eventlet")
        running.wait_healthy()
        yield running


def test_the_direct_path_sends_the_librarys_frames_byte_for_byte(stack: Stack) -> None:
    client = redis.Redis.from_url(stack.redis.url)
    seen = {}
    for gateway in ("direct", "library", "eventlet"):
        started = time.monotonic()
        seen[gateway] = script(stack.services[gateway].port or 0, client)
        assert time.monotonic() - started < 2 * PING_INTERVAL  # one ping, not two
    client.close()
    direct = seen["direct"]
    assert len(direct) >= 14 + TOGETHER  # every step above was seen
    assert direct == seen["library"] == seen["eventlet"]
    assert any(frame[1] & 0x7F == 127 for frame in direct)  # the 64-bit length was used
    assert sessions(stack, "direct") == {"direct": 1.0}
    assert sessions(stack, "library") == {}  # its WebSocket driver is python-engineio's
    # The updates published together were read, and so written to the client, at once.
    assert read_together(stack, "direct") >= TOGETHER


def metrics_text(stack: Stack, gateway: str) -> str:
    with urllib.request.urlopen(stack.services[gateway].url + "/metrics", timeout=5) as reply:
        return str(reply.read().decode())


def sessions(stack: Stack, gateway: str) -> dict[str, float]:
    text = metrics_text(stack, gateway)
    found = re.findall(r'rtplot_gateway_websocket_sessions_total\{path="(\w+)"\} (\S+)', text)
    return {path: float(count) for path, count in found}


def read_together(stack: Stack, gateway: str) -> float:
    """The smallest bucket bound below which not every listener batch fell: the largest
    batch read, within the histogram's buckets."""
    text = metrics_text(stack, gateway)
    found = re.findall(r'rtplot_gateway_listener_batch_updates_bucket\{le="([^"]+)"\} (\S+)', text)
    counts = [(float(bound), float(count)) for bound, count in found]
    total = max(count for _, count in counts)
    return min(bound for bound, count in counts if count == total)
