/**
 * The NRI and ttrpc messages' protobuf codec, loaded from proto/*.proto at start-up (no
 * generated code runs), and their TypeScript shapes (api-types.ts, generated from the
 * same protos by proto/generate-types.ts).
 *
 * Decoded objects keep the proto field names (snake_case), carry 64-bit integers as
 * decimal strings (so memory limits above 2^53 stay exact) and enums as numbers; every
 * field is optional because runtimes of other NRI versions omit or add fields.
 */

import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import type { Event } from "./api-types.ts";

export * from "./api-types.ts";

export const nriPackage = "nri.pkg.api.v1alpha1";

const moduleUrl = import.meta.url;

/** proto/nri.proto and proto/ttrpc.proto read into one root; `comments` keeps their `//` comments (for proto/generate-types.ts). */
export function parseProtos(options: { comments?: boolean } = {}): protobuf.Root {
  const root = new protobuf.Root();
  for (const file of ["nri.proto", "ttrpc.proto"]) {
    const text = readFileSync(new URL(`../proto/${file}`, moduleUrl), "utf8");
    protobuf.parse(text, root, { keepCase: true, alternateCommentMode: options.comments ?? false });
  }
  root.resolveAll();
  return root;
}

const root = parseProtos();

export interface Codec<T> {
  encode(value: T): Uint8Array;
  /** Throws on bytes that are not a valid encoding of the message. */
  decode(bytes: Uint8Array): T;
  /** Generates the coding functions now rather than at their first use (see generateCoders). */
  prepare(): void;
}

const decodeOptions: protobuf.IConversionOptions = { longs: String, enums: Number, defaults: false };

/**
 * Generates the coding functions of `type` and of every message it holds. protobufjs
 * generates each on its first use, and the plugin's first CreateContainer after a start
 * waited ~20 ms for them. Not at load: they cost ~9 MiB of RSS, which only a process that
 * speaks NRI should pay.
 */
function generateCoders(type: protobuf.Type): void {
  // Types shared by several messages, and every type at a reconnect's Synchronize, are generated once.
  if (generated.has(type)) return;
  generated.add(type);
  type.setup();
  for (const field of type.fieldsArray) {
    if (field.resolvedType instanceof protobuf.Type) generateCoders(field.resolvedType);
  }
}

const generated = new WeakSet<protobuf.Type>();

/** The codec of the message named `fullName` (e.g. "ttrpc.Request"). */
export function codecOf<T>(fullName: string): Codec<T> {
  const type = root.lookupType(fullName);
  return {
    encode: (value) => type.encode(type.fromObject(value as Record<string, unknown>)).finish(),
    decode: (bytes) => type.toObject(type.decode(bytes), decodeOptions) as T,
    prepare: () => generateCoders(type),
  };
}

/** The codec of an NRI message by its short name ("CreateContainerRequest"). */
export function nriCodec<T>(name: string): Codec<T> {
  return codecOf<T>(`${nriPackage}.${name}`);
}

/** The Event enum by the name the stub and plugin use: StateChange events and the bit positions of the Configure mask. */
export { Event as NriEvent } from "./api-types.ts";
export type NriEventNumber = (typeof Event)[keyof typeof Event];
