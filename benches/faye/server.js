// Faye (the npm Bayeux server) for ixn-load's CometD comparison: one Node.js process, the
// Bayeux endpoint at /bayeux on 127.0.0.1, long-polling and WebSocket, connects held up to 30 s
// (as ixn's default connect_timeout_ms). Anyone may subscribe and publish (no extensions): the
// cheapest Faye can be. Prints where it listens, then serves until killed.
//
//   node server.js [PORT]   (0 or none: a free port)
"use strict";
const http = require("http");
const faye = require("faye");

const port = Number(process.argv[2] || 0);
const bayeux = new faye.NodeAdapter({ mount: "/bayeux", timeout: 30 });
const server = http.createServer();
bayeux.attach(server);
server.listen(port, "127.0.0.1", () => {
  const { address, port } = server.address();
  console.log(`faye listening on http://${address}:${port}/bayeux`);
});
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => process.exit(0));
}
