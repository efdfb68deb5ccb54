/** SessionWard's TypeScript client: see README.md beside this package. */

export * from "./bytes.js";
export * from "./clients.js";
export * from "./eip712.js";
export * from "./grants.js";
export * from "./registration.js";
export * from "./signing.js";
export * from "./transport.js";
export * from "./webhooks.js";
export type * from "./generated/api.js";
export * as protocol from "./generated/protocol.js";
