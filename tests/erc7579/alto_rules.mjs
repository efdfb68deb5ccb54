// alto's own ERC-7562 validation rules (npm @pimlico/alto 0.0.20, the code its safe mode runs)
// applied to one user operation on a node: alto's tracer (BundlerCollectorTracerV07) records
// the EntryPoint's simulateValidation through alto's debug_traceCall, and alto's parser
// (tracerResultParserV07) judges it, for an unstaked account without factory or paymaster.
//
// The caller (alto_rules.py) lays alto's call chain: a forwarder (alto's simulations contract)
// calls the EntryPoint's delegateAndRevert, which DELEGATECALLs EntryPointSimulations (depth 3).
// alto's safe mode itself cannot be used for v0.7 (tests/erc4337/test_bundler.py).
//
// stdin: {"rpcUrl", "entryPoint", "sender", "to", "data", "stateOverrides"}
// stdout: {"ok": true, "storage": {contract: reads}, "calls": n} or {"ok": false, "error":
// alto's message, "levels": [[method, target] of each call from the EntryPoint]}
import { readFileSync } from "node:fs";
import { createPublicClient, http } from "viem";
import { bundlerCollectorTracer } from "../../node_modules/@pimlico/alto/esm/rpc/validation/BundlerCollectorTracerV07.js";
import { tracerResultParserV07 } from "../../node_modules/@pimlico/alto/esm/rpc/validation/TracerResultParserV07.js";
import { debug_traceCall } from "../../node_modules/@pimlico/alto/esm/rpc/validation/tracer.js";

const input = JSON.parse(readFileSync(0, "utf8"));
const client = createPublicClient({ transport: http(input.rpcUrl) });
const trace = await debug_traceCall(
  client,
  { from: "0x0000000000000000000000000000000000000000", to: input.to, data: input.data },
  { tracer: bundlerCollectorTracer, stateOverrides: input.stateOverrides },
);
const unstaked = { addr: input.sender, stake: 0n, unstakeDelaySec: 0n };
const validationResult = { senderInfo: unstaked, factoryInfo: undefined, paymasterInfo: undefined };
const userOp = { sender: input.sender };
try {
  const [, storage] = tracerResultParserV07(userOp, trace, validationResult, input.entryPoint.toLowerCase());
  process.stdout.write(JSON.stringify({ ok: true, storage, calls: trace.callsFromEntryPoint.length }));
} catch (error) {
  const levels = trace.callsFromEntryPoint.map((l) => [l.topLevelMethodSig, l.topLevelTargetAddress]);
  process.stdout.write(JSON.stringify({ ok: false, error: String(error.message ?? error), levels }));
}
