import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PrivacyEvent } from '../../src/privacy';

/** dist/test/privacy -> repo root */
const FIXTURES = join(__dirname, '../../../test/fixtures/accounting');

export interface VectorCase {
  id: string;
  events: PrivacyEvent[];
  delta: number;
  expected: { rdp_epsilon: number; pld_epsilon: number; exact_epsilon?: number };
  diagnostics: { rdp_epsilon_integer_orders: number; rdp_optimal_order: number; [k: string]: unknown };
}

export interface CalibrationCase {
  id: string;
  target_epsilon: number;
  delta: number;
  sampling_rate: number;
  steps: number;
  expected: { noise_multiplier_rdp: number; noise_multiplier_pld: number; noise_multiplier_exact?: number };
}

export function loadVectors(): VectorCase[] {
  return JSON.parse(readFileSync(join(FIXTURES, 'vectors.json'), 'utf8')) as VectorCase[];
}

export function loadCalibration(): CalibrationCase[] {
  return JSON.parse(readFileSync(join(FIXTURES, 'calibration.json'), 'utf8')) as CalibrationCase[];
}

export function relErr(actual: number, expected: number): number {
  return Math.abs(actual - expected) / Math.abs(expected);
}
