import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  create,
  createFileRegistry,
  type DescField,
  type DescMessage,
  fromBinary,
  ScalarType,
  toBinary,
} from '@bufbuild/protobuf';
import {
  DescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_wrappers,
  SourceCodeInfo_LocationSchema,
  StructSchema,
  TimestampSchema,
  TypeSchema,
} from '@bufbuild/protobuf/wkt';
import fc from 'fast-check';
import {
  BatchGetResponseSchema,
  BatchSetRequestSchema,
  EntrySchema,
  KvService,
  SetRequestSchema,
} from '#gen/gatehouse/kv/v1/kv_pb.ts';
import { messageEncoder } from './codec.ts';

type Value = Record<string, unknown>;

// Characters of every UTF-8 length (1 to 4 bytes), including lone surrogates, which both
// writers replace with U+FFFD.
const chars = fc.oneof(
  fc.integer({ min: 0, max: 0x7f }),
  fc.integer({ min: 0x80, max: 0x7ff }),
  fc.integer({ min: 0x800, max: 0xffff }),
  fc.integer({ min: 0x10000, max: 0x10ffff }),
);
const strings = fc.oneof(
  fc.string(),
  fc.string({ unit: chars.map((c) => String.fromCodePoint(c)), maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\uD800', 'a\uDC00b', '\uDBFF\uDFFF', 'x'.repeat(200), 'é', 'é'.repeat(70)),
);
const U64 = 2n ** 64n - 1n;
const I64 = 2n ** 63n;
const scalars: Partial<Record<ScalarType, fc.Arbitrary<unknown>>> = {
  [ScalarType.STRING]: strings,
  [ScalarType.BYTES]: fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(new Uint8Array(0))),
  [ScalarType.BOOL]: fc.boolean(),
  [ScalarType.UINT32]: fc.oneof(
    fc.constantFrom(0, 1, 127, 128, 16_383, 16_384, 0xffffffff),
    fc.nat({ max: 0xffffffff }),
  ),
  [ScalarType.INT32]: fc.oneof(
    fc.constantFrom(0, -1, 127, 128, -(2 ** 31), 2 ** 31 - 1),
    fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
  ),
  [ScalarType.UINT64]: fc.oneof(
    fc.constantFrom(0n, 127n, 128n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 63n, U64),
    fc.bigInt({ min: 0n, max: U64 }),
  ),
  [ScalarType.INT64]: fc.oneof(
    fc.constantFrom(0n, -1n, 2n ** 53n, -(2n ** 53n), -I64, I64 - 1n),
    fc.bigInt({ min: -I64, max: I64 - 1n }),
  ),
};

function scalarArb(field: DescField): fc.Arbitrary<unknown> {
  if (field.fieldKind === 'enum' || (field.fieldKind === 'list' && field.listKind === 'enum')) {
    // Open enums carry unknown numbers too.
    return fc.oneof(
      fc.constantFrom(...field.enum.values.map((v) => v.number)),
      fc.integer({ min: -5, max: 300 }),
    );
  }
  const scalar = field.fieldKind === 'scalar' || field.fieldKind === 'list' ? field.scalar : undefined;
  const arb = scalar === undefined ? undefined : scalars[scalar];
  if (arb === undefined) throw new Error(`no arbitrary for ${field.toString()}`);
  return arb;
}

/**
 * Init shapes of a message type: every field present, absent or null (which `create` treats as
 * unset), nested messages to `depth`.
 */
function messageArb(desc: DescMessage, depth: number): fc.Arbitrary<Value> {
  const fields: Record<string, fc.Arbitrary<unknown>> = {};
  const orNull = (arb: fc.Arbitrary<unknown>) => fc.oneof({ arbitrary: arb, weight: 9 }, fc.constant(null));
  for (const field of desc.fields) {
    if (field.fieldKind === 'message') {
      if (depth > 0) fields[field.localName] = orNull(messageArb(field.message, depth - 1));
    } else if (field.fieldKind === 'list' && field.listKind === 'message') {
      if (depth > 0)
        fields[field.localName] = fc.array(messageArb(field.message, depth - 1), { maxLength: 3 });
    } else if (field.fieldKind === 'list') {
      fields[field.localName] = fc.array(scalarArb(field), { maxLength: 5 });
    } else {
      fields[field.localName] = orNull(scalarArb(field));
    }
  }
  return fc.record(fields, { requiredKeys: [] });
}

const reference = (desc: DescMessage, value: Value) => Buffer.from(toBinary(desc, create(desc, value)));

/** The encoder's bytes for a plain object and for the message `create` builds from it. */
function assertSameBytes(desc: DescMessage, value: Value): void {
  const encoder = messageEncoder(desc);
  const expected = reference(desc, value);
  assert.deepEqual(Buffer.from(encoder.encode(value)), expected);
  assert.deepEqual(Buffer.from(encoder.encode(create(desc, value) as never)), expected);
  const framed = encoder.frame(value);
  assert.equal(framed.length, 5 + expected.length);
  assert.equal(framed[0], 0);
  assert.equal(framed.readUInt32BE(1), expected.length);
  assert.deepEqual(framed.subarray(5), expected);
}

const kvMessages = [EntrySchema, ...new Set(KvService.methods.flatMap((m) => [m.input, m.output]))];

describe('kv message encoder', () => {
  for (const desc of kvMessages) {
    it(`writes ${desc.name} byte for byte as the generic writer does`, () => {
      fc.assert(
        fc.property(messageArb(desc, 2), (value) => assertSameBytes(desc, value)),
        { numRuns: 150 },
      );
    });
  }

  it('handles the other supported kinds: enums, negative int32, nested and repeated messages', () => {
    // google.protobuf.Type: enums, int32, bools, repeated messages, a message with bytes inside.
    fc.assert(
      fc.property(messageArb(TypeSchema, 2), (value) => assertSameBytes(TypeSchema, value)),
      { numRuns: 150 },
    );
    fc.assert(
      fc.property(messageArb(TimestampSchema, 0), (value) => assertSameBytes(TimestampSchema, value)),
      { numRuns: 150 },
    );
  });

  it('writes a full 64-item batch answer the way the generic writer does', () => {
    const value = Buffer.alloc(1024, 'v');
    const results = Array.from({ length: 64 }, (_, i) => ({
      key: `key-${i}`,
      found: i % 7 !== 0,
      ...(i % 7 === 0 ? {} : { entry: { key: `key-${i}`, value, version: BigInt(i * 1000), ttlMs: 5n } }),
    }));
    assertSameBytes(BatchGetResponseSchema, { results });
    const items = results.map((r) => ({ key: r.key, value, ttlSeconds: 60, metadata: '{"a":1}' }));
    assertSameBytes(BatchSetRequestSchema, { namespace: 'orders', items });
  });

  it('writes an optional field that is set to zero and leaves an unset one out', () => {
    const zero = messageEncoder(SetRequestSchema).encode({ namespace: 'n', expectedVersion: 0n });
    assert.deepEqual(Buffer.from(zero), reference(SetRequestSchema, { namespace: 'n', expectedVersion: 0n }));
    assert.ok(zero.length > messageEncoder(SetRequestSchema).encode({ namespace: 'n' }).length);
  });

  it('leaves out the prototype defaults of a proto2 message, as the generic writer does', () => {
    fc.assert(
      fc.property(messageArb(SourceCodeInfo_LocationSchema, 0), (value) =>
        assertSameBytes(SourceCodeInfo_LocationSchema, value),
      ),
      { numRuns: 150 },
    );
    const location = create(SourceCodeInfo_LocationSchema, { path: [1, 2] });
    assert.deepEqual(
      Buffer.from(messageEncoder(SourceCodeInfo_LocationSchema).encode(location)),
      Buffer.from('0a020102', 'hex'),
    );
  });

  it('gives a message with a wrapper field to the generic writer, which wraps the plain value', () => {
    const file = create(FileDescriptorProtoSchema, {
      name: 'wrapped.proto',
      package: 'test',
      syntax: 'proto3',
      dependency: ['google/protobuf/wrappers.proto'],
      messageType: [
        {
          name: 'Wrapped',
          field: [
            {
              name: 'n',
              jsonName: 'n',
              number: 1,
              type: FieldDescriptorProto_Type.MESSAGE,
              label: FieldDescriptorProto_Label.OPTIONAL,
              typeName: '.google.protobuf.Int64Value',
            },
          ],
        },
      ],
    });
    const registry = createFileRegistry(file, (name) =>
      name === 'google/protobuf/wrappers.proto' ? file_google_protobuf_wrappers : undefined,
    );
    const wrapped = registry.getMessage('test.Wrapped');
    assert.ok(wrapped);
    const value = { n: 7n };
    assert.deepEqual(Buffer.from(messageEncoder(wrapped).encode(value)), Buffer.from('0a020807', 'hex'));
  });

  it('drops unknown fields of a plain object, as create does', () => {
    const plain = { key: 'k', $unknown: [{ no: 15, wireType: 0, data: new Uint8Array([1]) }] };
    assert.deepEqual(
      Buffer.from(messageEncoder(EntrySchema).encode(plain as never)),
      reference(EntrySchema, plain),
    );
  });

  it('keeps unknown fields of a decoded message, as the generic writer does', () => {
    const known = toBinary(EntrySchema, create(EntrySchema, { key: 'k', version: 3n }));
    // Field 15 (varint 300) and field 16 (length-delimited "hi") are not in Entry.
    const wire = Buffer.concat([
      Buffer.from(known),
      Buffer.from([0x78, 0xac, 0x02, 0x82, 0x01, 0x02, 0x68, 0x69]),
    ]);
    const decoded = fromBinary(EntrySchema, wire);
    assert.equal(decoded.$unknown?.length, 2);
    assert.deepEqual(Buffer.from(messageEncoder(EntrySchema).encode(decoded)), wire);
  });

  it('gives message types with other field kinds to the generic writer', () => {
    // Struct holds a map and Value a oneof; DescriptorProto reaches doubles and proto2 groups of options.
    const struct = { fields: { a: { kind: { case: 'numberValue' as const, value: 1.5 } } } };
    assertSameBytes(StructSchema, struct);
    const descriptor = { name: 'M', field: [{ name: 'f', number: 1 }], options: { deprecated: true } };
    assertSameBytes(DescriptorProtoSchema, descriptor);
  });

  it('refuses a value of the wrong type or out of range, naming the field (stricter than the generic writer)', () => {
    const set = messageEncoder(SetRequestSchema);
    const entry = messageEncoder(EntrySchema);
    const cases: [() => unknown, RegExp][] = [
      [() => set.encode({ ttlSeconds: -1 }), /ttl_seconds.*out of range/],
      [() => set.encode({ ttlSeconds: 2 ** 32 }), /ttl_seconds.*out of range/],
      [() => set.encode({ ttlSeconds: 1.5 }), /ttl_seconds.*not a 32-bit integer/],
      [() => set.encode({ expectedVersion: -1n }), /expected_version.*out of range/],
      [() => set.encode({ expectedVersion: 2n ** 64n }), /expected_version.*out of range/],
      [() => entry.encode({ ttlMs: 2n ** 63n }), /ttl_ms.*out of range/],
      [() => set.encode({ key: 5 as never }), /key.*not a string/],
      [() => set.encode({ value: 'text' as never }), /value.*not a Uint8Array/],
      [() => entry.encode({ version: 1.5 as never }), /version.*not a 64-bit integer/],
      // The generic writer converts these; the encoder refuses them.
      [() => entry.encode({ version: (2 ** 60) as never }), /version.*not a 64-bit integer/],
      [() => set.encode({ ttlSeconds: '5' as never }), /ttl_seconds.*not a 32-bit integer/],
    ];
    for (const [encode, message] of cases) assert.throws(encode, message);
  });
});
