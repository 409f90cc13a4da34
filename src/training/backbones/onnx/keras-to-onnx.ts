/**
 * Translates a Keras functional model (TF.js model.json topology + float32 weights) into an ONNX graph.
 *
 * Supported layers (what MobileNet-style backbones use): InputLayer, ZeroPadding2D, Conv2D,
 * DepthwiseConv2D, BatchNormalization, ReLU (max_value -> Clip), Activation(relu|relu6|linear), Add,
 * Dropout (identity at inference), GlobalAveragePooling2D.
 *
 * - The graph input is NHWC float32 [N, S, S, C] with a symbolic batch dim, followed by a Transpose to
 *   NCHW. With `normalise`, the graph applies the backbone's per-channel affine normalisation (x * a + b,
 *   from its PreprocessingSpec; placed as the InputLayer case explains) itself, so that it takes pixels (0-255) and the caller only
 *   converts them to float32: ONNX Runtime's vectorised Mul is a small fraction of JavaScript's loop
 *   (docs/benchmarks.md). Without it the input is normalised, as the TF.js model's.
 * - A BatchNormalization whose only input is a convolution consumed by nothing else is folded into the
 *   convolution (W' = W * gamma / sqrt(var + eps), b' = (b - mean) * gamma / sqrt(var + eps) + beta,
 *   computed in float64 and rounded to float32).
 * - A ZeroPadding2D feeding a `valid` convolution becomes that convolution's `pads` attribute.
 * - Keras `same` padding: explicit symmetric-floor pads for stride 1 (pad_before = floor(total / 2), as TF
 *   does), `auto_pad = SAME_UPPER` for larger strides (extra padding at the end, as TF does).
 * - The output is `features`, [N, D].
 */
import type { KerasLayerJson, KerasModelTopology } from '../nsfwjs-files';
import { inboundLayerNames } from '../keras-topology';
import { BackboneError } from '../types';
import { floatTensor, int64Tensor, type OnnxModel, type OnnxNode, type OnnxTensor, TensorDataType } from './protobuf';

export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'features';
export const OPSET_VERSION = 13;
export const IR_VERSION = 7;

export type WeightLookup = (name: string) => { shape: number[]; data: Float32Array } | undefined;

interface PendingPad {
  kind: 'pad';
  input: string;
  /** [top, bottom], [left, right] */
  pads: [[number, number], [number, number]];
}

interface PendingConv {
  kind: 'conv';
  name: string;
  input: string;
  weight: Float32Array; // [out, in/group, kh, kw]
  dims: number[];
  bias?: Float32Array;
  attributes: OnnxNode['attributes'];
}

export interface ExportOptions {
  inputSize: number;
  /** Per-channel x * a + b applied to the input inside the graph (preprocess.ts `affineOf`); absent: the input arrives normalised. */
  normalise?: { a: Float32Array; b: Float32Array };
  channels?: number;
  graphName?: string;
  docString?: string;
  metadata?: Record<string, string>;
  producerVersion?: string;
}

function unsupported(layer: KerasLayerJson, what: string): never {
  throw new BackboneError('ONNX_EXPORT_FAILED', `layer ${layer.name} (${layer.class_name}): ${what}`);
}

function pair(v: unknown, layer: KerasLayerJson, key: string): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0] as number, v[1] as number];
  return unsupported(layer, `${key} must be a number or a pair`);
}

function zeroPaddingOf(layer: KerasLayerJson): [[number, number], [number, number]] {
  const p = layer.config.padding;
  if (typeof p === 'number') return [[p, p], [p, p]];
  if (Array.isArray(p) && p.length === 2) {
    if (typeof p[0] === 'number' && typeof p[1] === 'number') return [[p[0], p[0]], [p[1], p[1]]];
    if (Array.isArray(p[0]) && Array.isArray(p[1])) return [pair(p[0], layer, 'padding'), pair(p[1], layer, 'padding')];
  }
  return unsupported(layer, 'unsupported padding format');
}

/** Builds the ONNX graph of a (cut) Keras topology. */
export function kerasToOnnx(topology: KerasModelTopology, weights: WeightLookup, opts: ExportOptions): OnnxModel {
  const cfg = topology.model_config.config;
  const layers = cfg.layers;
  const channels = opts.channels ?? 3;
  const outputs = (cfg.output_layers as unknown[][]).map((o) => o[0] as string);
  if (outputs.length !== 1) throw new BackboneError('ONNX_EXPORT_FAILED', 'exactly one output layer is supported');

  const consumers = new Map<string, number>();
  for (const l of layers) for (const src of inboundLayerNames(l)) consumers.set(src, (consumers.get(src) ?? 0) + 1);

  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [];
  const produced = new Map<string, string | PendingPad | PendingConv>();
  let counter = 0;
  const uniq = (base: string) => `${base}__${counter++}`;

  const weight = (layer: KerasLayerJson, variable: string, required = true): { shape: number[]; data: Float32Array } | undefined => {
    const w = weights(`${layer.name}/${variable}`);
    if (!w && required) throw new BackboneError('ONNX_EXPORT_FAILED', `missing weight ${layer.name}/${variable}`);
    return w;
  };

  const emitConv = (c: PendingConv, outName: string): string => {
    const wName = `${c.name}__W`;
    inits.push(floatTensor(wName, c.dims, c.weight));
    const inputs = [c.input, wName];
    if (c.bias) {
      const bName = `${c.name}__B`;
      inits.push(floatTensor(bName, [c.bias.length], c.bias));
      inputs.push(bName);
    }
    nodes.push({ opType: 'Conv', name: c.name, inputs, outputs: [outName], attributes: c.attributes });
    return outName;
  };

  const emitPad = (p: PendingPad, outName: string): string => {
    const padsName = uniq(`${outName}__pads`);
    // NCHW: [n_begin, c_begin, h_begin, w_begin, n_end, c_end, h_end, w_end]
    inits.push(int64Tensor(padsName, [8], [0, 0, p.pads[0][0], p.pads[1][0], 0, 0, p.pads[0][1], p.pads[1][1]]));
    nodes.push({ opType: 'Pad', name: outName, inputs: [p.input, padsName], outputs: [outName], attributes: { mode: { kind: 'string', value: 'constant' } } });
    return outName;
  };

  /** Tensor name of a layer's output, materialising a deferred pad / conv. */
  const resolve = (layerName: string): string => {
    const v = produced.get(layerName);
    if (v === undefined) throw new BackboneError('ONNX_EXPORT_FAILED', `layer ${layerName} used before it is defined`);
    if (typeof v === 'string') return v;
    const name = v.kind === 'pad' ? emitPad(v, layerName) : emitConv(v, layerName);
    produced.set(layerName, name);
    return name;
  };

  const single = (layer: KerasLayerJson): string => {
    const ins = inboundLayerNames(layer);
    if (ins.length !== 1) unsupported(layer, `expected one input, got ${ins.length}`);
    return ins[0];
  };

  const activation = (layer: KerasLayerJson, input: string, act: string, maxValue?: number): string => {
    if (act === 'linear') return input;
    if (act === 'relu' && maxValue === undefined) {
      nodes.push({ opType: 'Relu', name: layer.name, inputs: [input], outputs: [layer.name] });
      return layer.name;
    }
    if (act === 'relu' || act === 'relu6') {
      const hi = act === 'relu6' ? 6 : (maxValue as number);
      const lo = uniq(`${layer.name}__min`);
      const up = uniq(`${layer.name}__max`);
      inits.push(floatTensor(lo, [], new Float32Array([0])), floatTensor(up, [], new Float32Array([hi])));
      nodes.push({ opType: 'Clip', name: layer.name, inputs: [input, lo, up], outputs: [layer.name] });
      return layer.name;
    }
    return unsupported(layer, `activation ${act}`);
  };

  for (const layer of layers) {
    const c = layer.config;
    switch (layer.class_name) {
      case 'InputLayer': {
        const shape = c.batch_input_shape as (number | null)[];
        if (shape[3] != null && shape[3] !== channels) unsupported(layer, `expected ${channels} channels`);
        // The backbone's normalisation, if the graph applies it (ONNX Runtime: +25-30 us per 96 px image at
        // batch 64 placed after the transpose, where it parts the transpose from the first convolution;
        // nothing measurable as a scalar before it; +0.7 ms per 224 px image as [C] over NHWC's last axis,
        // a slow broadcasting path). Uniform coefficients (pixels / 255) are scalars before the transpose;
        // per-channel ones [1, C, 1, 1] after it. b = 0 needs no Add.
        const norm = opts.normalise;
        if (norm && (norm.a.length !== channels || norm.b.length !== channels)) throw new BackboneError('ONNX_EXPORT_FAILED', `normalisation needs ${channels} values per coefficient`);
        const uniform = norm !== undefined && norm.a.every((v) => v === norm.a[0]) && norm.b.every((v) => v === norm.b[0]);
        const normalise = (input: string, dims: number[]): string => {
          if (!norm) return input;
          const values = (v: Float32Array) => (dims.length === 1 ? v.subarray(0, 1) : v);
          inits.push(floatTensor('input_scale', dims, values(norm.a)));
          nodes.push({ opType: 'Mul', name: 'input_scale', inputs: [input, 'input_scale'], outputs: ['input_scaled'] });
          if (norm.b.every((v) => v === 0)) return 'input_scaled';
          inits.push(floatTensor('input_shift', dims, values(norm.b)));
          nodes.push({ opType: 'Add', name: 'input_shift', inputs: ['input_scaled', 'input_shift'], outputs: ['input_normalised'] });
          return 'input_normalised';
        };
        const nhwc = uniform ? normalise(ONNX_INPUT_NAME, [1]) : ONNX_INPUT_NAME;
        nodes.push({
          opType: 'Transpose',
          name: 'input_nhwc_to_nchw',
          inputs: [nhwc],
          outputs: ['input_nchw'],
          attributes: { perm: { kind: 'ints', value: [0, 3, 1, 2] } },
        });
        const input = uniform ? 'input_nchw' : normalise('input_nchw', [1, channels, 1, 1]);
        produced.set(layer.name, input);
        break;
      }
      case 'ZeroPadding2D': {
        if ((c.data_format ?? 'channels_last') !== 'channels_last') unsupported(layer, 'channels_first');
        produced.set(layer.name, { kind: 'pad', input: resolve(single(layer)), pads: zeroPaddingOf(layer) });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        if ((c.data_format ?? 'channels_last') !== 'channels_last') unsupported(layer, 'channels_first');
        const [kh, kw] = pair(c.kernel_size, layer, 'kernel_size');
        const [sh, sw] = pair(c.strides ?? 1, layer, 'strides');
        const [dh, dw] = pair(c.dilation_rate ?? 1, layer, 'dilation_rate');
        const src = single(layer);
        const srcVal = produced.get(src);
        let input: string;
        const attributes: NonNullable<OnnxNode['attributes']> = {
          kernel_shape: { kind: 'ints', value: [kh, kw] },
          strides: { kind: 'ints', value: [sh, sw] },
          dilations: { kind: 'ints', value: [dh, dw] },
        };
        let pads = [0, 0, 0, 0];
        if (c.padding === 'valid') {
          if (srcVal && typeof srcVal === 'object' && srcVal.kind === 'pad' && (consumers.get(src) ?? 0) === 1) {
            input = srcVal.input;
            pads = [srcVal.pads[0][0], srcVal.pads[1][0], srcVal.pads[0][1], srcVal.pads[1][1]];
            produced.delete(src);
          } else input = resolve(src);
        } else if (c.padding === 'same') {
          input = resolve(src);
          if (sh === 1 && sw === 1) {
            const th = (kh - 1) * dh;
            const tw = (kw - 1) * dw;
            pads = [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
          } else attributes.auto_pad = { kind: 'string', value: 'SAME_UPPER' };
        } else return unsupported(layer, `padding ${String(c.padding)}`);
        if (!attributes.auto_pad) attributes.pads = { kind: 'ints', value: pads };

        let dims: number[];
        let onnxW: Float32Array;
        if (layer.class_name === 'Conv2D') {
          const k = weight(layer, 'kernel')!; // [kh, kw, in, out]
          const [, , cin, cout] = k.shape;
          if ((c.groups ?? 1) !== 1) unsupported(layer, 'grouped Conv2D');
          dims = [cout, cin, kh, kw];
          onnxW = new Float32Array(k.data.length);
          for (let y = 0; y < kh; y++)
            for (let x = 0; x < kw; x++)
              for (let i = 0; i < cin; i++)
                for (let o = 0; o < cout; o++) onnxW[((o * cin + i) * kh + y) * kw + x] = k.data[((y * kw + x) * cin + i) * cout + o];
          attributes.group = { kind: 'int', value: 1 };
        } else {
          const k = weight(layer, 'depthwise_kernel')!; // [kh, kw, in, mult]
          const [, , cin, mult] = k.shape;
          dims = [cin * mult, 1, kh, kw];
          onnxW = new Float32Array(k.data.length);
          for (let y = 0; y < kh; y++)
            for (let x = 0; x < kw; x++)
              for (let i = 0; i < cin; i++)
                for (let m = 0; m < mult; m++) onnxW[((i * mult + m) * kh + y) * kw + x] = k.data[((y * kw + x) * cin + i) * mult + m];
          attributes.group = { kind: 'int', value: cin };
        }
        const bias = c.use_bias ? weight(layer, 'bias')!.data : undefined;
        const pending: PendingConv = { kind: 'conv', name: layer.name, input, weight: onnxW, dims, bias: bias && Float32Array.from(bias), attributes };
        const act = (c.activation as string | undefined) ?? 'linear';
        if (act === 'linear') produced.set(layer.name, pending);
        else {
          const convOut = emitConv(pending, `${layer.name}__preact`);
          produced.set(layer.name, activation(layer, convOut, act));
        }
        break;
      }
      case 'BatchNormalization': {
        const axis = c.axis as number | number[];
        const ax = Array.isArray(axis) ? axis : [axis];
        if (ax.length !== 1 || (ax[0] !== -1 && ax[0] !== 3)) unsupported(layer, `axis ${JSON.stringify(axis)}`);
        const eps = (c.epsilon as number | undefined) ?? 1e-3;
        const mean = weight(layer, 'moving_mean')!.data;
        const variance = weight(layer, 'moving_variance')!.data;
        const gamma = c.scale === false ? undefined : weight(layer, 'gamma')!.data;
        const beta = c.center === false ? undefined : weight(layer, 'beta')!.data;
        const C = mean.length;
        const scale = new Float64Array(C);
        const shift = new Float64Array(C);
        for (let i = 0; i < C; i++) {
          scale[i] = (gamma ? gamma[i] : 1) / Math.sqrt(variance[i] + eps);
          shift[i] = (beta ? beta[i] : 0) - mean[i] * scale[i];
        }
        const src = single(layer);
        const srcVal = produced.get(src);
        if (srcVal && typeof srcVal === 'object' && srcVal.kind === 'conv' && (consumers.get(src) ?? 0) === 1) {
          const w = srcVal.weight;
          const per = w.length / C;
          const folded = new Float32Array(w.length);
          for (let o = 0; o < C; o++) for (let j = 0; j < per; j++) folded[o * per + j] = w[o * per + j] * scale[o];
          const b = new Float32Array(C);
          for (let o = 0; o < C; o++) b[o] = (srcVal.bias ? srcVal.bias[o] : 0) * scale[o] + shift[o];
          produced.delete(src);
          produced.set(layer.name, { ...srcVal, name: layer.name, weight: folded, bias: b });
        } else {
          // Unfolded: y = x * scale + shift, per channel (NCHW -> broadcast shape [C, 1, 1]).
          const input = resolve(src);
          const sName = `${layer.name}__scale`;
          const bName = `${layer.name}__shift`;
          inits.push(floatTensor(sName, [C, 1, 1], Float32Array.from(scale)), floatTensor(bName, [C, 1, 1], Float32Array.from(shift)));
          nodes.push({ opType: 'Mul', name: `${layer.name}__mul`, inputs: [input, sName], outputs: [`${layer.name}__mul`] });
          nodes.push({ opType: 'Add', name: layer.name, inputs: [`${layer.name}__mul`, bName], outputs: [layer.name] });
          produced.set(layer.name, layer.name);
        }
        break;
      }
      case 'ReLU': {
        if ((c.negative_slope as number | undefined) ?? 0) unsupported(layer, 'negative_slope != 0');
        if ((c.threshold as number | undefined) ?? 0) unsupported(layer, 'threshold != 0');
        const mv = c.max_value as number | null | undefined;
        produced.set(layer.name, activation(layer, resolve(single(layer)), 'relu', mv == null ? undefined : mv));
        break;
      }
      case 'Activation': {
        produced.set(layer.name, activation(layer, resolve(single(layer)), String(c.activation)));
        break;
      }
      case 'Dropout': {
        produced.set(layer.name, resolve(single(layer)));
        break;
      }
      case 'Add': {
        const ins = inboundLayerNames(layer).map(resolve);
        if (ins.length < 2) unsupported(layer, 'Add with fewer than two inputs');
        let acc = ins[0];
        for (let i = 1; i < ins.length; i++) {
          const out = i === ins.length - 1 ? layer.name : uniq(layer.name);
          nodes.push({ opType: 'Add', name: out, inputs: [acc, ins[i]], outputs: [out] });
          acc = out;
        }
        produced.set(layer.name, acc);
        break;
      }
      case 'GlobalAveragePooling2D': {
        if ((c.data_format ?? 'channels_last') !== 'channels_last') unsupported(layer, 'channels_first');
        const input = resolve(single(layer));
        nodes.push({ opType: 'GlobalAveragePool', name: `${layer.name}__gap`, inputs: [input], outputs: [`${layer.name}__gap`] });
        nodes.push({ opType: 'Flatten', name: layer.name, inputs: [`${layer.name}__gap`], outputs: [layer.name], attributes: { axis: { kind: 'int', value: 1 } } });
        produced.set(layer.name, layer.name);
        break;
      }
      default:
        unsupported(layer, 'layer type not supported by the ONNX exporter');
    }
  }

  const out = resolve(outputs[0]);
  nodes.push({ opType: 'Identity', name: 'output_identity', inputs: [out], outputs: [ONNX_OUTPUT_NAME] });

  // Feature dim: channels of the last conv's weight before the output (read from the emitted graph).
  const featureDim = inferOutputChannels(nodes, inits, out);
  return {
    irVersion: IR_VERSION,
    opsetVersion: OPSET_VERSION,
    producerName: 'privatune',
    producerVersion: opts.producerVersion ?? '1',
    docString: opts.docString,
    metadata: opts.metadata,
    graph: {
      name: opts.graphName ?? cfg.name,
      nodes,
      initializers: inits,
      inputs: [{ name: ONNX_INPUT_NAME, elemType: TensorDataType.FLOAT, shape: ['N', opts.inputSize, opts.inputSize, channels] }],
      outputs: [{ name: ONNX_OUTPUT_NAME, elemType: TensorDataType.FLOAT, shape: featureDim ? ['N', featureDim] : ['N', 'D'] }],
    },
  };
}

/** Walks back from `tensor` through shape-preserving-channel ops to the nearest Conv and reads its output channels. */
function inferOutputChannels(nodes: OnnxNode[], inits: OnnxTensor[], tensor: string): number | undefined {
  const byOutput = new Map(nodes.map((n) => [n.outputs[0], n]));
  const initDims = new Map(inits.map((t) => [t.name, t.dims]));
  let cur = byOutput.get(tensor);
  for (let guard = 0; cur && guard < 1000; guard++) {
    if (cur.opType === 'Conv') return initDims.get(cur.inputs[1])?.[0];
    cur = byOutput.get(cur.inputs[0]);
  }
  return undefined;
}
