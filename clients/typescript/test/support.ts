/** Test support: the shared vectors file and the live server's environment. */

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The repository root, from dist/test/ (compiled) or test/ (source). */
export function repoRoot(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const marker = "/clients/typescript/";
  return here.slice(0, here.lastIndexOf(marker) + 1);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export function vectors(): Json {
  return JSON.parse(readFileSync(`${repoRoot()}tests/clients/vectors.json`, "utf8"));
}
