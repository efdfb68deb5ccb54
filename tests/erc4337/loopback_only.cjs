// Preloaded into the alto bundler's node process by tests/erc4337/alto_bundler.py.
// alto 0.0.20 hard-codes `listen({host: "0.0.0.0"})` and has no option for the host; the tests
// must bind loopback only, so every listen on the wildcard address is moved to 127.0.0.1.
"use strict";
const net = require("node:net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (first && typeof first === "object" && (first.host === "0.0.0.0" || first.host === "::" || first.host === undefined)) {
    args[0] = { ...first, host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
