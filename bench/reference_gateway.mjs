// The reference Socket.IO server for the fan-out benchmark (bench/fanout.py, mode "node"):
// Node socket.io with @socket.io/redis-adapter and the redis client, as their docs set
// them up, pinned in package.json.
//
//     node bench/reference_gateway.mjs PORT REDIS_URL ROOMS_JSON
//
// It serves what the load generator uses of rtplot's protocol: `subscribe` {"symbol",
// "updates"} joins the symbol's room (whole figures or deltas) and is acknowledged when
// the client asks for an ack. The room names are rtplot's (common/contract/rooms.py):
// bench/fanout.py passes them, {"<updates>": {"<SYMBOL>": "<room>"}}, so none is spelled
// here. Updates reach it as any
// socket.io server's broadcasts do, through the adapter's Redis channel (bench/fanout.py
// publishes them in the adapter's own format), and it relays each to the room's clients.
// GET /healthz answers "ok" once Redis is connected.

import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";

const [port, redisUrl, roomsJson] = process.argv.slice(2);
if (!port || !redisUrl || !roomsJson) {
  console.error("usage: node bench/reference_gateway.mjs PORT REDIS_URL ROOMS_JSON");
  process.exit(2);
}
const ROOMS = JSON.parse(roomsJson);

const pubClient = createClient({ url: redisUrl });
const subClient = pubClient.duplicate();
for (const client of [pubClient, subClient]) {
  client.on("error", (error) => console.error("redis:", error.message));
}
await Promise.all([pubClient.connect(), subClient.connect()]);

const http = createServer((request, response) => {
  const found = request.url === "/healthz";
  response.writeHead(found ? 200 : 404).end(found ? "ok" : "");
});
const io = new Server(http, { adapter: createAdapter(pubClient, subClient) });

io.on("connection", (socket) => {
  socket.on("subscribe", (data, ack) => {
    const symbol = typeof data?.symbol === "string" ? data.symbol.toUpperCase() : "";
    const updates = data?.updates ?? "figure";
    const room = Object.hasOwn(ROOMS, updates) ? ROOMS[updates][symbol] : undefined;
    const reply = room ? { ok: true, symbol: data.symbol } : { ok: false, error: "bad request" };
    if (reply.ok) socket.join(room);
    if (typeof ack === "function") ack(reply);
  });
});

http.listen(Number(port), "127.0.0.1");
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
