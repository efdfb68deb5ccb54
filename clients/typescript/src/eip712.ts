/**
 * EIP-712 hashing of an `eth_signTypedData_v4` document, written over `@noble/hashes`' keccak
 * (independent of the service's hasher: the point of recomputing a digest is not to trust it).
 *
 * Supports the types the protocol uses: address, bool, string, bytes, bytes1..32,
 * uint8..256, int8..256, structs and dynamic arrays of any of these.
 */

import { keccak_256 } from "@noble/hashes/sha3.js";

import { concat, fromHex, uintBytes, utf8 } from "./bytes.js";

export interface TypedField {
  name: string;
  type: string;
}

export type TypedTypes = Record<string, TypedField[]>;

export interface TypedData {
  types: TypedTypes;
  primaryType: string;
  domain: Record<string, unknown>;
  message: Record<string, unknown>;
}

export class TypedDataError extends Error {}

function dependencies(types: TypedTypes, primary: string, found = new Set<string>()): Set<string> {
  if (found.has(primary) || !(primary in types)) return found;
  found.add(primary);
  for (const field of types[primary]!) dependencies(types, field.type.replace(/\[\]$/, ""), found);
  return found;
}

/** `encodeType`: the primary type, then referenced structs in alphabetical order. */
export function encodeType(types: TypedTypes, primary: string): string {
  const deps = [...dependencies(types, primary)].filter((t) => t !== primary).sort();
  return [primary, ...deps]
    .map((t) => `${t}(${types[t]!.map((f) => `${f.type} ${f.name}`).join(",")})`)
    .join("");
}

export function typeHash(types: TypedTypes, primary: string): Uint8Array {
  return keccak_256(utf8(encodeType(types, primary)));
}

function integer(value: unknown, path: string): bigint {
  if (typeof value === "bigint") return value;
  if (typeof value === "number" && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === "string" && /^(?:-?[0-9]+|0x[0-9a-fA-F]+)$/.test(value)) {
    return BigInt(value);
  }
  throw new TypedDataError(`${path}: not an integer`);
}

function hexBytes(value: unknown, path: string): Uint8Array {
  if (typeof value !== "string") throw new TypedDataError(`${path}: not 0x hex`);
  try {
    return fromHex(value);
  } catch {
    throw new TypedDataError(`${path}: not 0x hex`);
  }
}

function encodeValue(types: TypedTypes, type: string, value: unknown, path: string): Uint8Array {
  if (type.endsWith("[]")) {
    if (!Array.isArray(value)) throw new TypedDataError(`${path}: not an array`);
    const item = type.slice(0, -2);
    return keccak_256(concat(...value.map((v, i) => encodeValue(types, item, v, `${path}[${i}]`))));
  }
  if (type in types) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new TypedDataError(`${path}: not a struct`);
    }
    return hashStruct(types, type, value as Record<string, unknown>, path);
  }
  if (type === "string") {
    if (typeof value !== "string") throw new TypedDataError(`${path}: not a string`);
    return keccak_256(utf8(value));
  }
  if (type === "bytes") return keccak_256(hexBytes(value, path));
  if (type === "bool") {
    if (typeof value !== "boolean") throw new TypedDataError(`${path}: not a boolean`);
    return uintBytes(value ? 1n : 0n, 32);
  }
  if (type === "address") {
    const bytes = hexBytes(value, path);
    if (bytes.length !== 20) throw new TypedDataError(`${path}: an address is 20 bytes`);
    return concat(new Uint8Array(12), bytes);
  }
  let match = /^bytes([0-9]+)$/.exec(type);
  if (match) {
    const size = Number(match[1]);
    const bytes = hexBytes(value, path);
    if (size < 1 || size > 32 || bytes.length !== size) {
      throw new TypedDataError(`${path}: a ${type} is ${size} bytes`);
    }
    return concat(bytes, new Uint8Array(32 - size));
  }
  match = /^(u?)int([0-9]+)$/.exec(type);
  if (match) {
    const bits = Number(match[2]);
    if (bits < 8 || bits > 256 || bits % 8 !== 0) throw new TypedDataError(`bad type ${type}`);
    const n = integer(value, path);
    if (match[1] === "u") {
      if (n < 0n || n >= 1n << BigInt(bits)) throw new TypedDataError(`${path}: out of ${type}`);
      return uintBytes(n, 32);
    }
    const half = 1n << BigInt(bits - 1);
    if (n < -half || n >= half) throw new TypedDataError(`${path}: out of ${type}`);
    return uintBytes(n < 0n ? (1n << 256n) + n : n, 32);
  }
  throw new TypedDataError(`${path}: unsupported type ${type}`);
}

/** `hashStruct`: keccak256(typeHash ‖ encodeData). Every field must be present, no other. */
export function hashStruct(
  types: TypedTypes,
  primary: string,
  data: Record<string, unknown>,
  path = primary,
): Uint8Array {
  const fields = types[primary];
  if (fields === undefined) throw new TypedDataError(`unknown type ${primary}`);
  const names = new Set(fields.map((f) => f.name));
  for (const key of Object.keys(data)) {
    if (!names.has(key)) throw new TypedDataError(`${path}.${key}: not a field of ${primary}`);
  }
  const encoded = fields.map((f) => {
    if (!(f.name in data)) throw new TypedDataError(`${path}.${f.name}: missing`);
    return encodeValue(types, f.type, data[f.name], `${path}.${f.name}`);
  });
  return keccak_256(concat(typeHash(types, primary), ...encoded));
}

/** The digest a wallet signs for `eth_signTypedData_v4`: keccak256(0x1901 ‖ domain ‖ message). */
export function typedDataDigest(document: TypedData): Uint8Array {
  const domain = hashStruct(document.types, "EIP712Domain", document.domain, "domain");
  const message = hashStruct(document.types, document.primaryType, document.message, "message");
  return keccak_256(concat(new Uint8Array([0x19, 0x01]), domain, message));
}
