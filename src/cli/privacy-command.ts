/**
 * `privatune privacy ...` subcommands (pure: all I/O through `io`).
 *
 *   epsilon   --delta D [--accountant exact|rdp|pld|auto] --events JSON|@file [--pld-discretization H]
 *   delta     --epsilon E [--accountant ...] --events JSON|@file
 *   calibrate --target-epsilon E --delta D [--sampling-rate Q] [--steps T] [--accountant A] [--events-before JSON|@file]
 *
 * Success: one JSON line on stdout, exit 0. Bad input: one line on stderr, nothing on stdout, exit 2.
 */
import { parseArgs } from 'node:util';
import {
  calibrateNoiseMultiplier,
  computeDelta,
  computeEpsilon,
  parsePrivacyEvents,
  PrivacyInputError,
  type AccountantName,
  type PrivacyEvent,
} from '../privacy';

export interface PrivacyCommandIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
  readFile: (path: string) => string;
}

class UsageError extends Error {}

const USAGE =
  'usage: privacy epsilon --delta D --events JSON|@file [--accountant exact|rdp|pld|auto] | ' +
  'privacy delta --epsilon E --events JSON|@file [--accountant A] | ' +
  'privacy calibrate --target-epsilon E --delta D [--sampling-rate Q] [--steps T] [--accountant A] [--events-before JSON|@file]';

function num(v: string | undefined, name: string, required: boolean): number | undefined {
  if (v === undefined) {
    if (required) throw new UsageError(`--${name} is required`);
    return undefined;
  }
  if (v.trim() === '') throw new UsageError(`--${name} must be a number`);
  const x = Number(v);
  if (!Number.isFinite(x)) throw new UsageError(`--${name} must be a finite number (got ${JSON.stringify(v)})`);
  return x;
}

function accountantArg(v: string | undefined): AccountantName {
  if (v === undefined) return 'auto';
  if (v === 'exact' || v === 'rdp' || v === 'pld' || v === 'auto') return v;
  throw new UsageError(`--accountant must be one of exact, rdp, pld, auto (got ${JSON.stringify(v)})`);
}

function eventsArg(v: string | undefined, name: string, io: PrivacyCommandIo, required: boolean): PrivacyEvent[] {
  if (v === undefined) {
    if (required) throw new UsageError(`--${name} is required`);
    return [];
  }
  let text = v;
  if (v.startsWith('@')) {
    try {
      text = io.readFile(v.slice(1));
    } catch (err) {
      throw new UsageError(`--${name}: cannot read ${v.slice(1)}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError(`--${name}: not valid JSON`);
  }
  return parsePrivacyEvents(json);
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

export async function runPrivacyCommand(argv: string[], io: PrivacyCommandIo): Promise<number> {
  try {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '--help' || sub === '-h') throw new UsageError('missing subcommand');
    const { values } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        delta: { type: 'string' },
        epsilon: { type: 'string' },
        accountant: { type: 'string' },
        events: { type: 'string' },
        'events-before': { type: 'string' },
        'target-epsilon': { type: 'string' },
        'sampling-rate': { type: 'string' },
        steps: { type: 'string' },
        'pld-discretization': { type: 'string' },
      },
    });
    const accountant = accountantArg(values.accountant);
    const h = num(values['pld-discretization'], 'pld-discretization', false);
    const options = h === undefined ? undefined : { pldDiscretization: h };
    switch (sub) {
      case 'epsilon': {
        const delta = num(values.delta, 'delta', true)!;
        const events = eventsArg(values.events, 'events', io, true);
        const r = computeEpsilon(events, delta, accountant, options);
        io.stdout(JSON.stringify({ epsilon: r.epsilon, delta: r.delta, accountant: r.accountant }) + '\n');
        return 0;
      }
      case 'delta': {
        const epsilon = num(values.epsilon, 'epsilon', true)!;
        const events = eventsArg(values.events, 'events', io, true);
        const r = computeDelta(events, epsilon, accountant, options);
        io.stdout(JSON.stringify({ delta: r.delta, epsilon: r.epsilon, accountant: r.accountant }) + '\n');
        return 0;
      }
      case 'calibrate': {
        const targetEpsilon = num(values['target-epsilon'], 'target-epsilon', true)!;
        const delta = num(values.delta, 'delta', true)!;
        const samplingRate = num(values['sampling-rate'], 'sampling-rate', false);
        const steps = num(values.steps, 'steps', false);
        const eventsBefore = eventsArg(values['events-before'], 'events-before', io, false);
        const r = calibrateNoiseMultiplier({ targetEpsilon, delta, samplingRate, steps, accountant, eventsBefore, options });
        io.stdout(JSON.stringify({ noiseMultiplier: r.noiseMultiplier, epsilon: r.epsilon, accountant: r.accountant }) + '\n');
        return 0;
      }
      default:
        throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(oneLine(`privacy: ${err.message}. ${USAGE}`) + '\n');
      return 2;
    }
    if (err instanceof PrivacyInputError) {
      io.stderr(oneLine(`privacy: ${err.message}`) + '\n');
      return 2;
    }
    if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(oneLine(`privacy: ${err.message}. ${USAGE}`) + '\n');
      return 2;
    }
    throw err;
  }
}
