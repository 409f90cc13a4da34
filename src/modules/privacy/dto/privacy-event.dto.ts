import { Field, Float, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import type { AccountantName, PrivacyEvent } from '../../../privacy';

export enum PrivacyEventType {
  GAUSSIAN = 'gaussian',
  POISSON_SUBSAMPLED_GAUSSIAN = 'poisson_subsampled_gaussian',
  LAPLACE = 'laplace',
}
registerEnumType(PrivacyEventType, {
  name: 'PrivacyEventType',
  description: 'A noisy release mechanism; sensitivity is normalised to 1 (noise multiplier = noise scale / sensitivity).',
});

export enum Accountant {
  EXACT = 'exact',
  RDP = 'rdp',
  PLD = 'pld',
  AUTO = 'auto',
}
registerEnumType(Accountant, {
  name: 'Accountant',
  description: 'EXACT: analytic Gaussian (mu-GDP); RDP: Renyi DP; PLD: privacy loss distributions; AUTO: the tightest valid one.',
});

@ObjectType({ description: 'One kind of noisy release, performed `count` times (add-or-remove-one neighbours).' })
export class PrivacyEventObject {
  @Field(() => PrivacyEventType)
  type: PrivacyEventType;

  @Field(() => Float, { description: 'Noise standard deviation (Gaussian) or scale (Laplace) divided by the sensitivity.' })
  noiseMultiplier: number;

  @Field(() => Float, { nullable: true, description: 'Poisson sampling rate q, for subsampled events.' })
  samplingRate?: number | null;

  @Field(() => Int)
  count: number;
}

@InputType()
export class PrivacyEventInput {
  @Field(() => PrivacyEventType)
  type: PrivacyEventType;

  @Field(() => Float)
  noiseMultiplier: number;

  @Field(() => Float, { nullable: true })
  samplingRate?: number;

  @Field(() => Int, { defaultValue: 1 })
  count: number;
}

/** GraphQL input (camelCase) to the accounting schema (snake_case); validation happens in parsePrivacyEvents. */
export function toAccountingEvents(events: PrivacyEventInput[]): unknown[] {
  return events.map((e) => ({
    type: e.type,
    noise_multiplier: e.noiseMultiplier,
    ...(e.samplingRate !== undefined && e.samplingRate !== null ? { sampling_rate: e.samplingRate } : {}),
    count: e.count,
  }));
}

export function toEventObject(e: PrivacyEvent): PrivacyEventObject {
  return {
    type: e.type as PrivacyEventType,
    noiseMultiplier: e.noise_multiplier,
    samplingRate: 'sampling_rate' in e ? e.sampling_rate : null,
    count: e.count,
  };
}

export function accountantName(a: Accountant | undefined): AccountantName {
  return (a ?? Accountant.AUTO) as AccountantName;
}
