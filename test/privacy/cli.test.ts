import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runPrivacyCommand } from '../../src/cli/privacy-command';
import { computeEpsilon } from '../../src/privacy';

function io(files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    io: {
      stdout: (s: string) => void out.push(s),
      stderr: (s: string) => void err.push(s),
      readFile: (p: string) => {
        if (!(p in files)) throw new Error(`ENOENT: ${p}`);
        return files[p];
      },
    },
  };
}

const EVENTS = JSON.stringify([{ type: 'gaussian', noise_multiplier: 1, count: 1 }]);

test('epsilon prints one JSON line', async () => {
  const h = io();
  const code = await runPrivacyCommand(['epsilon', '--delta', '1e-5', '--accountant', 'exact', '--events', EVENTS], h.io);
  assert.equal(code, 0);
  assert.equal(h.err.length, 0);
  assert.equal(h.out.length, 1);
  assert.ok(h.out[0].endsWith('\n') && !h.out[0].trimEnd().includes('\n'));
  const r = JSON.parse(h.out[0]);
  assert.deepEqual(Object.keys(r), ['epsilon', 'delta', 'accountant']);
  assert.ok(Math.abs(r.epsilon - 4.377178095681231) < 1e-8);
  assert.equal(r.delta, 1e-5);
  assert.equal(r.accountant, 'exact');
});

test('epsilon reads @file and defaults to auto', async () => {
  const ev = [{ type: 'poisson_subsampled_gaussian', noise_multiplier: 1, sampling_rate: 0.01, count: 100 }];
  const h = io({ 'ledger/events.json': JSON.stringify(ev) });
  const code = await runPrivacyCommand(['epsilon', '--delta', '1e-5', '--events', '@ledger/events.json'], h.io);
  assert.equal(code, 0);
  const r = JSON.parse(h.out[0]);
  assert.equal(r.accountant, 'pld');
  assert.equal(r.epsilon, computeEpsilon(ev as never, 1e-5, 'pld').epsilon);
});

test('calibrate prints noise multiplier', async () => {
  const h = io();
  const code = await runPrivacyCommand(
    ['calibrate', '--target-epsilon', '4', '--delta', '1e-6', '--sampling-rate', '1', '--steps', '1', '--accountant', 'exact'],
    h.io,
  );
  assert.equal(code, 0);
  const r = JSON.parse(h.out[0]);
  assert.deepEqual(Object.keys(r), ['noiseMultiplier', 'epsilon', 'accountant']);
  assert.ok(Math.abs(r.noiseMultiplier / 1.1935185871579845 - 1) < 1e-6);
  assert.ok(r.epsilon <= 4);
  const h2 = io();
  assert.equal(await runPrivacyCommand(['calibrate', '--target-epsilon', '2', '--delta', '1e-5', '--sampling-rate', '0.01', '--steps', '1000', '--accountant', 'rdp'], h2.io), 0);
  assert.ok(Math.abs(JSON.parse(h2.out[0]).noiseMultiplier / 1.0222898296104916 - 1) < 1e-5);
});

test('delta subcommand', async () => {
  const h = io();
  assert.equal(await runPrivacyCommand(['delta', '--epsilon', '1', '--events', EVENTS, '--accountant', 'rdp'], h.io), 0);
  const r = JSON.parse(h.out[0]);
  assert.ok(r.delta > 0 && r.delta < 1);
});

test('bad input: exit 2, one line on stderr, nothing on stdout', async () => {
  const bad: string[][] = [
    [],
    ['frobnicate'],
    ['epsilon', '--delta', '1e-5'],
    ['epsilon', '--delta', '2', '--events', EVENTS],
    ['epsilon', '--delta', 'abc', '--events', EVENTS],
    ['epsilon', '--delta', '1e-5', '--events', '[{"type":"gaussian","noise_multiplier":-1,"count":1}]'],
    ['epsilon', '--delta', '1e-5', '--events', '{not json'],
    ['epsilon', '--delta', '1e-5', '--events', '@missing.json'],
    ['epsilon', '--delta', '1e-5', '--events', EVENTS, '--accountant', 'moments'],
    ['epsilon', '--delta', '1e-5', '--events', EVENTS, '--bogus', '1'],
    ['epsilon', '--delta', '1e-5', '--events', '[{"type":"poisson_subsampled_gaussian","noise_multiplier":1,"sampling_rate":0.1,"count":1}]', '--accountant', 'exact'],
    ['calibrate', '--delta', '1e-5'],
    ['calibrate', '--target-epsilon', '1', '--delta', '1e-5', '--sampling-rate', '0'],
    ['calibrate', '--target-epsilon', '1', '--delta', '1e-5', '--steps', '1.5'],
    ['epsilon', 'positional', '--delta', '1e-5', '--events', EVENTS],
  ];
  for (const argv of bad) {
    const h = io();
    const code = await runPrivacyCommand(argv, h.io);
    assert.equal(code, 2, `argv ${JSON.stringify(argv)}`);
    assert.equal(h.out.length, 0, `stdout for ${JSON.stringify(argv)}`);
    assert.equal(h.err.length, 1);
    assert.ok(h.err[0].endsWith('\n') && !h.err[0].trimEnd().includes('\n'), `multi-line: ${h.err[0]}`);
  }
});
