/**
 * Errors raised by the privacy accounting library. Every error a caller can provoke with bad input is a
 * PrivacyInputError whose message names the offending field, so the API layer can map it to a 4xx.
 */
export class PrivacyInputError extends Error {
  readonly code = 'INVALID_PRIVACY_INPUT';
  /** The input field the problem is about (e.g. `events[2].noise_multiplier`, `delta`). */
  readonly field: string;

  constructor(field: string, problem: string) {
    super(`${field}: ${problem}`);
    this.name = 'PrivacyInputError';
    this.field = field;
  }
}

/** The requested accountant cannot treat these events (e.g. `exact` on a subsampled list). */
export class AccountantNotApplicableError extends PrivacyInputError {
  constructor(field: string, problem: string) {
    super(field, problem);
    this.name = 'AccountantNotApplicableError';
  }
}
