/**
 * Minimal protobuf (proto3 wire format) encoder for the subset of onnx.proto that the exporter writes:
 * ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto, ValueInfoProto, TypeProto,
 * TensorShapeProto, OperatorSetIdProto, StringStringEntryProto. Field numbers follow onnx/onnx.proto3.
 * Written from the wire-format rules (varint, length-delimited, fixed32); no protobuf package.
 */

/** Growable byte buffer with protobuf primitive writers. */
class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + extra) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  /** Unsigned varint of a non-negative integer or bigint (int64 negatives are written as 10-byte two's complement). */
  varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.len++] = Number(v);
  }

  /** Faster path for small non-negative numbers (tags, lengths). */
  uvarint(value: number): void {
    if (value < 0 || !Number.isSafeInteger(value)) return this.varint(value);
    this.ensure(10);
    while (value >= 0x80) {
      this.buf[this.len++] = (value & 0x7f) | 0x80;
      value = Math.floor(value / 128);
    }
    this.buf[this.len++] = value;
  }

  tag(field: number, wireType: 0 | 1 | 2 | 5): void {
    this.uvarint(field * 8 + wireType);
  }

  bytes(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  fixed32Float(v: number): void {
    this.ensure(4);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 4).setFloat32(0, v, true);
    this.len += 4;
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

const utf8 = new TextEncoder();

/** Message builder: fields are appended in call order (protobuf allows any order). */
export class Message {
  private readonly w = new Writer();

  int(field: number, value: number | bigint | undefined): this {
    if (value === undefined) return this;
    this.w.tag(field, 0);
    this.w.varint(value);
    return this;
  }

  float(field: number, value: number | undefined): this {
    if (value === undefined) return this;
    this.w.tag(field, 5);
    this.w.fixed32Float(value);
    return this;
  }

  bytes(field: number, data: Uint8Array | undefined): this {
    if (data === undefined) return this;
    this.w.tag(field, 2);
    this.w.uvarint(data.length);
    this.w.bytes(data);
    return this;
  }

  string(field: number, value: string | undefined): this {
    if (value === undefined) return this;
    return this.bytes(field, utf8.encode(value));
  }

  message(field: number, msg: Message | undefined): this {
    if (msg === undefined) return this;
    return this.bytes(field, msg.finish());
  }

  /** Packed repeated varint field (int64 / int32). */
  packedInts(field: number, values: readonly (number | bigint)[]): this {
    if (values.length === 0) return this;
    const inner = new Writer();
    for (const v of values) inner.varint(v);
    return this.bytes(field, inner.finish());
  }

  /** Packed repeated float field. */
  packedFloats(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const inner = new Writer();
    for (const v of values) inner.fixed32Float(v);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.w.finish();
  }
}

// ---- onnx.proto field numbers and enums ----

export const TensorDataType = { FLOAT: 1, INT32: 6, INT64: 7 } as const;
const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export type AttributeValue =
  | { kind: 'int'; value: number }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'ints'; value: number[] }
  | { kind: 'floats'; value: number[] }
  | { kind: 'tensor'; value: OnnxTensor };

export interface OnnxTensor {
  name: string;
  dims: number[];
  dataType: (typeof TensorDataType)[keyof typeof TensorDataType];
  /** Little-endian raw bytes (TensorProto.raw_data). */
  raw: Uint8Array;
}

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue>;
  domain?: string;
}

export interface OnnxValueInfo {
  name: string;
  elemType: (typeof TensorDataType)[keyof typeof TensorDataType];
  /** number: fixed dim; string: symbolic dim (dim_param). */
  shape: (number | string)[];
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  docString?: string;
}

export interface OnnxModel {
  irVersion: number;
  opsetVersion: number;
  producerName: string;
  producerVersion: string;
  docString?: string;
  metadata?: Record<string, string>;
  graph: OnnxGraph;
}

export function floatTensor(name: string, dims: number[], data: Float32Array): OnnxTensor {
  const size = dims.reduce((a, b) => a * b, 1);
  if (size !== data.length) throw new Error(`tensor ${name}: ${data.length} values for dims ${dims.join('x')}`);
  const raw = new Uint8Array(data.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return { name, dims, dataType: TensorDataType.FLOAT, raw };
}

export function int64Tensor(name: string, dims: number[], data: number[]): OnnxTensor {
  const raw = new Uint8Array(data.length * 8);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < data.length; i++) view.setBigInt64(i * 8, BigInt(data[i]), true);
  return { name, dims, dataType: TensorDataType.INT64, raw };
}

function encodeTensor(t: OnnxTensor): Message {
  // TensorProto: dims=1 (packed int64), data_type=2, name=8, raw_data=9
  return new Message().packedInts(1, t.dims).int(2, t.dataType).string(8, t.name).bytes(9, t.raw);
}

function encodeAttribute(name: string, a: AttributeValue): Message {
  // AttributeProto: name=1, f=2, i=3, s=4, t=5, floats=7, ints=8, type=20
  const m = new Message().string(1, name);
  switch (a.kind) {
    case 'int':
      return m.int(3, a.value).int(20, AttrType.INT);
    case 'float':
      return m.float(2, a.value).int(20, AttrType.FLOAT);
    case 'string':
      return m.string(4, a.value).int(20, AttrType.STRING);
    case 'ints':
      return m.packedInts(8, a.value).int(20, AttrType.INTS);
    case 'floats':
      return m.packedFloats(7, a.value).int(20, AttrType.FLOATS);
    case 'tensor':
      return m.message(5, encodeTensor(a.value)).int(20, AttrType.TENSOR);
  }
}

function encodeNode(n: OnnxNode): Message {
  // NodeProto: input=1, output=2, name=3, op_type=4, attribute=5, domain=7
  const m = new Message();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) m.message(5, encodeAttribute(k, v));
  if (n.domain) m.string(7, n.domain);
  return m;
}

function encodeValueInfo(v: OnnxValueInfo): Message {
  // ValueInfoProto: name=1, type=2; TypeProto: tensor_type=1; TypeProto.Tensor: elem_type=1, shape=2;
  // TensorShapeProto: dim=1; Dimension: dim_value=1, dim_param=2
  const shape = new Message();
  for (const d of v.shape) {
    shape.message(1, typeof d === 'number' ? new Message().int(1, d) : new Message().string(2, d));
  }
  const tensorType = new Message().int(1, v.elemType).message(2, shape);
  return new Message().string(1, v.name).message(2, new Message().message(1, tensorType));
}

function encodeGraph(g: OnnxGraph): Message {
  // GraphProto: node=1, name=2, initializer=5, doc_string=10, input=11, output=12
  const m = new Message();
  for (const n of g.nodes) m.message(1, encodeNode(n));
  m.string(2, g.name);
  for (const t of g.initializers) m.message(5, encodeTensor(t));
  m.string(10, g.docString);
  for (const i of g.inputs) m.message(11, encodeValueInfo(i));
  for (const o of g.outputs) m.message(12, encodeValueInfo(o));
  return m;
}

/** Serialises a model to ONNX protobuf bytes. */
export function encodeModel(model: OnnxModel): Uint8Array {
  // ModelProto: ir_version=1, producer_name=2, producer_version=3, doc_string=6, graph=7, opset_import=8,
  // metadata_props=14 (StringStringEntryProto key=1 value=2); OperatorSetIdProto: domain=1, version=2
  const m = new Message()
    .int(1, model.irVersion)
    .string(2, model.producerName)
    .string(3, model.producerVersion)
    .string(6, model.docString)
    .message(7, encodeGraph(model.graph))
    .message(8, new Message().string(1, '').int(2, model.opsetVersion));
  for (const [k, v] of Object.entries(model.metadata ?? {})) m.message(14, new Message().string(1, k).string(2, v));
  return m.finish();
}
