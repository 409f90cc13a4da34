/**
 * Expected failures returned as typed members of payload unions (DESIGN.md, API conventions), so that
 * clients branch on __typename instead of parsing errors[]. `asPayload` turns the matching domain errors
 * into these objects; anything else still goes to errors[] through the error formatter.
 */
import { Field, ObjectType } from '@nestjs/graphql';
import { BadInputError, DomainError } from '../errors/domain-errors';

@ObjectType({ description: 'The input was refused; nothing was written.' })
export class ValidationError {
  @Field()
  message: string;

  @Field(() => String, { nullable: true, description: 'The input field at fault, when one is.' })
  field: string | null;

  @Field({ description: 'Stable reason code.' })
  code: string;
}

export type PayloadErrorMapper = (err: DomainError) => object | undefined;

export function toValidationError(err: BadInputError): ValidationError {
  const field = typeof err.details?.field === 'string' ? err.details.field : null;
  const reason = typeof err.details?.reason === 'string' ? err.details.reason : err.code;
  return Object.assign(new ValidationError(), { message: err.message, field, code: reason });
}

/** Runs fn; BadInputError (and what `extra` maps) becomes a payload member, other errors propagate. */
export async function asPayload<T>(fn: () => Promise<T>, extra?: PayloadErrorMapper): Promise<T | object> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof DomainError) {
      const mapped = extra?.(err);
      if (mapped) return mapped;
    }
    if (err instanceof BadInputError) return toValidationError(err);
    if ((err as { code?: string }).code === 'INVALID_PRIVACY_INPUT') {
      return Object.assign(new ValidationError(), { message: (err as Error).message, field: 'events', code: 'INVALID_PRIVACY_INPUT' });
    }
    throw err;
  }
}
