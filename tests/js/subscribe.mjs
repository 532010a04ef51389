// The official Socket.IO JavaScript client (socket.io-client from npm) against a gateway:
// subscribe, take the snapshot and a few live updates, print them as JSON lines.
import { io } from "socket.io-client";

const [url, symbol, wanted] = [process.argv[2], process.argv[3], Number(process.argv[4] ?? 3)];
const socket = io(url, { transports: ["websocket"], reconnection: false, timeout: 10000 });
const seen = [];
const bail = setTimeout(() => { console.error("timed out"); process.exit(2); }, 20000);

socket.on("connect", () => {
  socket.emit("subscribe", { symbol }, (ack) => console.log(JSON.stringify({ ack })));
});
socket.on("figure", (update) => {
  seen.push(update.seq);
  console.log(JSON.stringify({ seq: update.seq, symbol: update.symbol,
                               points: update.figure.data[0].x.length }));
  if (seen.length >= wanted) {
    clearTimeout(bail);
    socket.close();
  }
});
socket.on("connect_error", (err) => { console.error(String(err)); process.exit(3); });
