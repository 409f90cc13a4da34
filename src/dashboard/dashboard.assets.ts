/**
 * The dashboard's static files, read once at start and kept in memory.
 *
 * The build is `tsc` only, so the plain browser files are not copied to dist/: they are read from the
 * source tree (`src/dashboard/public`, resolved from the package root, so the same path works from
 * dist/src/dashboard and from src/dashboard) and Chart.js from its npm package. The Docker image copies
 * `src/dashboard/public` next to `dist/` for the same reason.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface DashboardAsset {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** URL path below /dashboard -> file. '' is the page itself. */
const APP_FILES: Record<string, { file: string; contentType: string }> = {
  '': { file: 'index.html', contentType: 'text/html; charset=utf-8' },
  'app.js': { file: 'app.js', contentType: 'text/javascript; charset=utf-8' },
  'app.css': { file: 'app.css', contentType: 'text/css; charset=utf-8' },
};
export const CHART_JS_PATH = 'vendor/chart.umd.min.js';

/** The folder holding index.html, app.js and app.css. */
export function publicDir(): string {
  // __dirname is dist/src/dashboard (compiled) or src/dashboard (ts-node): find the package root above it.
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'src', 'dashboard', 'public');
    if (existsSync(join(dir, 'package.json')) && existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`dashboard files not found: expected src/dashboard/public in the package root above ${__dirname}`);
}

/** Chart.js's UMD build from node_modules (its package exports do not expose the file itself). */
export function chartJsFile(): string {
  return join(dirname(require.resolve('chart.js')), 'chart.umd.min.js');
}

function asset(body: Buffer, contentType: string): DashboardAsset {
  return { body, contentType, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** Reads every asset; throws when one is missing. */
export function loadDashboardAssets(): Map<string, DashboardAsset> {
  const dir = publicDir();
  const assets = new Map<string, DashboardAsset>();
  for (const [path, { file, contentType }] of Object.entries(APP_FILES)) {
    assets.set(path, asset(readFileSync(join(dir, file)), contentType));
  }
  assets.set(CHART_JS_PATH, asset(readFileSync(chartJsFile()), 'text/javascript; charset=utf-8'));
  return assets;
}
