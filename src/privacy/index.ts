/**
 * Privacy accounting library (pure: no framework, no I/O besides node:crypto for noise).
 * See docs/benchmarks.md (Accounting) and the file comments of each accountant for methods and references.
 */
export type { PrivacyEvent, AccountantName, ConcreteAccountant } from './events';
export { parsePrivacyEvents, MAX_EVENT_COUNT } from './events';
export { PrivacyInputError, AccountantNotApplicableError } from './errors';
export { computeEpsilon, computeDelta, naiveEpsilonSum } from './accountant';
export type { AccountingOptions, EpsilonResult, DeltaResult } from './accountant';
export { calibrateNoiseMultiplier } from './calibrate';
export type { CalibrationParams, CalibrationResult } from './calibrate';
export { DEFAULT_RDP_ORDERS, INTEGER_RDP_ORDERS } from './rdp';
export { DEFAULT_PLD_DISCRETIZATION } from './pld';
export { secureNoise, seededNoiseForTests } from './noise';
export type { NoiseSource } from './noise-source';
