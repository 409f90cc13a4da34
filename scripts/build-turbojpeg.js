#!/usr/bin/env node
/*
 * `npm install` step: builds serving's native JPEG decoder (native/turbojpeg, an N-API addon over the
 * system's libjpeg-turbo) with the node-gyp that npm ships. Optional: where the TurboJPEG headers
 * (Debian: libturbojpeg0-dev), python3, make or a C compiler are missing, it says so and the install goes
 * on; serving then decodes JPEGs in WebAssembly (same pixels, about four times the CPU).
 * PRIVATUNE_NATIVE_JPEG=0 skips the build.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync, rmSync } = require('node:fs');
const { join } = require('node:path');

const dir = join(__dirname, '..', 'native', 'turbojpeg');
const fallback = 'serving will decode JPEGs in WebAssembly';

/** Whether the TurboJPEG headers are where the compiler looks (the test of the built addon asks too). */
function turboJpegHeaders() {
  return ['/usr/include', '/usr/local/include', '/opt/homebrew/include'].some((d) => existsSync(join(d, 'turbojpeg.h')));
}

function skip(why) {
  console.warn(`privatune: native JPEG decoder not built (${why}); ${fallback}`);
  process.exit(0);
}

function build() {
  if (process.env.PRIVATUNE_NATIVE_JPEG === '0') {
    rmSync(join(dir, 'build'), { recursive: true, force: true });
    skip('PRIVATUNE_NATIVE_JPEG=0');
  }
  const gyp = process.env.npm_config_node_gyp;
  if (!gyp || !existsSync(gyp)) skip("npm's node-gyp not found: run through npm install");
  if (!turboJpegHeaders()) skip('turbojpeg.h not found: install libturbojpeg0-dev (Debian) or libjpeg-turbo (Homebrew)');

  const r = spawnSync(process.execPath, [gyp, 'rebuild'], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(join(dir, 'build'), { recursive: true, force: true });
    console.warn(`${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-8).join('\n'));
    skip('node-gyp failed: its last lines are above');
  }
  console.log('privatune: native JPEG decoder built (native/turbojpeg)');
}

if (require.main === module) build();
module.exports = { turboJpegHeaders };
