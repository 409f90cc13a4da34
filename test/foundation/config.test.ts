import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig, redact } from '../../src/config/config';
import { baseEnv, MAIN } from '../support/server';

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 3000);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.graphql.introspection, true);
    assert.equal(c.role, 'all');
  });

  it('names the variable and what is expected', () => {
    assert.throws(() => loadConfig({ PORT: 'abc' }), (e: unknown) => e instanceof ConfigError && /PORT must be an integer from 0 to 65535 \(got "abc"\)/.test(e.message));
    assert.throws(() => loadConfig({ PORT: '70000' }), /PORT must be an integer/);
    assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://x@y/z' }), /DATABASE_URL must be a URL \(postgres: or postgresql:\)/);
    assert.throws(() => loadConfig({ GRAPHQL_INTROSPECTION: 'maybe' }), /GRAPHQL_INTROSPECTION must be true or false/);
    assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), /LOG_LEVEL must be one of debug, info, warn, error/);
    assert.throws(() => loadConfig({ NODE_ENV: 'staging' }), /NODE_ENV must be one of/);
    assert.throws(() => loadConfig({ BACKBONE_ENGINE: 'gpu' }), /BACKBONE_ENGINE must be one of auto, onnx, tfjs/);
    assert.equal(loadConfig({}).backboneEngine, 'auto');
    assert.equal(loadConfig({}).worker.extractionNice, 19);
    assert.equal(loadConfig({ WORKER_EXTRACTION_NICE: '0' }).worker.extractionNice, 0);
    assert.throws(() => loadConfig({ WORKER_EXTRACTION_NICE: '20' }), /WORKER_EXTRACTION_NICE must be an integer from 0 to 19/);
    assert.equal(loadConfig({ BACKBONE_ENGINE: 'tfjs' }).backboneEngine, 'tfjs');
    assert.equal(loadConfig({}).serving.inlinePassMaxMs, 10);
    assert.equal(loadConfig({ SERVING_INLINE_PASS_MAX_MS: '0' }).serving.inlinePassMaxMs, 0);
    assert.throws(() => loadConfig({ SERVING_INLINE_PASS_MAX_MS: '-1' }), /SERVING_INLINE_PASS_MAX_MS must be an integer from 0 to 1000/);
  });

  it('never repeats a password in its messages', () => {
    assert.equal(redact('postgres://u:secret@h:5432/db'), 'postgres://u:***@h:5432/db');
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'http://u:secret@h/db' }),
      (e: unknown) => e instanceof ConfigError && !e.message.includes('secret'),
    );
  });

  it('stops the server process with one clear line on bad configuration', async () => {
    const child = spawn(process.execPath, [MAIN], { env: baseEnv({ PORT: 'not-a-port', DATABASE_URL: undefined }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.notEqual(code, 0);
    assert.equal(stderr.trim().split('\n').length, 1);
    assert.match(stderr, /PORT must be an integer from 0 to 65535 \(got "not-a-port"\)/);
  });
});
