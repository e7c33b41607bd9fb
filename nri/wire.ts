/**
 * A protobuf wire-format reader for the few messages read on every container's path (the
 * ttrpc request envelope, the pod's and container's identity in NRI events): it keeps the
 * fields a schema names and skips the rest. protobufjs's generated decoders, cold in a
 * process that idles between containers, took ~0.12 ms for the envelope and ~0.25 ms for
 * a CreateContainerRequest (timed in the plugin); this reads them in about half. Values
 * come out as protobufjs's toObject gives them with api.ts's options (64-bit integers as
 * decimal strings, enums as numbers, unset fields absent), so either decoder serves the
 * same types.
 */

/** How one field's bytes become a value. */
export type FieldKind =
  | "string"
  | "bytes"
  | "uint32"
  | "int32"
  | "int64"
  | "string map"
  | { message: WireSchema }
  | { repeated: WireSchema };

/** Field number → [name, kind]. Fields not named here are skipped. */
export type WireSchema = Readonly<Record<number, readonly [string, FieldKind]>>;

const wireType = { varint: 0, fixed64: 1, delimited: 2, fixed32: 5 } as const;

const utf8 = new TextDecoder();

/** Reads `bytes` as a message of `schema`; throws a RangeError on bytes that are not a valid encoding. */
export function readMessage<T>(schema: WireSchema, bytes: Uint8Array): T {
  return readFields(schema, new Cursor(bytes, 0, bytes.byteLength)) as T;
}

class Cursor {
  readonly bytes: Uint8Array;
  at: number;
  readonly end: number;

  constructor(bytes: Uint8Array, at: number, end: number) {
    this.bytes = bytes;
    this.at = at;
    this.end = end;
  }

  /** A varint up to 64 bits: a number while exact, else a BigInt. */
  varint(): number | bigint {
    let value = 0;
    for (let shift = 0; shift < 49; shift += 7) {
      const byte = this.#byte();
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    let big = BigInt(value);
    for (let shift = 49n; shift < 70n; shift += 7n) {
      const byte = this.#byte();
      big += BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asUintN(64, big);
    }
    throw new RangeError("varint longer than 10 bytes");
  }

  /** A length-delimited field's bounds; the cursor moves past it. */
  delimited(): Cursor {
    const length = Number(this.varint());
    const start = this.at;
    if (length > this.end - start) throw new RangeError(`field of ${length} bytes at offset ${start} runs past its message (${this.end})`);
    this.at = start + length;
    return new Cursor(this.bytes, start, start + length);
  }

  skip(type: number): void {
    if (type === wireType.varint) this.varint();
    else if (type === wireType.delimited) this.delimited();
    else if (type === wireType.fixed64 || type === wireType.fixed32) {
      this.at += type === wireType.fixed64 ? 8 : 4;
      if (this.at > this.end) throw new RangeError(`fixed-width field runs past its message (${this.end})`);
    } else throw new RangeError(`wire type ${type} at offset ${this.at} is not one proto3 uses`);
  }

  text(): string {
    return utf8.decode(this.bytes.subarray(this.at, this.end));
  }

  #byte(): number {
    if (this.at >= this.end) throw new RangeError(`truncated varint at offset ${this.at}`);
    return this.bytes[this.at++];
  }
}

function readFields(schema: WireSchema, cursor: Cursor): Record<string, unknown> {
  const message: Record<string, unknown> = {};
  while (cursor.at < cursor.end) {
    const key = Number(cursor.varint());
    const type = key & 7;
    const field = schema[Math.floor(key / 8)];
    if (field === undefined) {
      cursor.skip(type);
      continue;
    }
    const [name, kind] = field;
    const scalar = kind === "uint32" || kind === "int32" || kind === "int64";
    if (type !== (scalar ? wireType.varint : wireType.delimited)) throw new RangeError(`field ${name} has wire type ${type}`);
    if (kind === "uint32" || kind === "int32") {
      const value = low32(cursor.varint());
      message[name] = kind === "int32" ? value | 0 : value;
    } else if (kind === "int64") {
      const value = cursor.varint();
      message[name] = typeof value === "number" ? String(value) : BigInt.asIntN(64, value).toString();
    } else if (kind === "string") {
      message[name] = cursor.delimited().text();
    } else if (kind === "bytes") {
      const value = cursor.delimited();
      message[name] = value.bytes.subarray(value.at, value.end);
    } else if (kind === "string map") {
      const entry = readFields(mapEntry, cursor.delimited());
      ((message[name] ??= {}) as Record<string, string>)[(entry.key as string | undefined) ?? ""] = (entry.value as string | undefined) ?? "";
    } else if ("message" in kind) {
      message[name] = readFields(kind.message, cursor.delimited());
    } else {
      ((message[name] ??= []) as unknown[]).push(readFields(kind.repeated, cursor.delimited()));
    }
  }
  return message;
}

/** The low 32 bits, as proto3 reads an int32 or uint32 from a (sign-extended) varint. */
function low32(value: number | bigint): number {
  return typeof value === "number" ? value % 2 ** 32 : Number(BigInt.asUintN(32, value));
}

const mapEntry: WireSchema = { 1: ["key", "string"], 2: ["value", "string"] };
