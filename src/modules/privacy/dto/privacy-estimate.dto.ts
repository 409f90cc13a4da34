import { Field, Float, InputType, Int, ObjectType } from '@nestjs/graphql';
import { Accountant, PrivacyEventInput } from './privacy-event.dto';

@InputType()
export class CalibrationInput {
  @Field(() => Float)
  targetEpsilon: number;

  @Field(() => Float, { defaultValue: 1, description: 'Poisson sampling rate per step; 1 means full batch.' })
  samplingRate: number;

  @Field(() => Int, { defaultValue: 1 })
  steps: number;
}

@InputType({ description: 'Give `events` to get their epsilon, or `calibrate` to get the smallest noise multiplier for a target epsilon.' })
export class PrivacyEstimateInput {
  @Field(() => Float)
  delta: number;

  @Field(() => Accountant, { defaultValue: Accountant.AUTO })
  accountant: Accountant;

  @Field(() => [PrivacyEventInput], { nullable: true })
  events?: PrivacyEventInput[];

  @Field(() => CalibrationInput, { nullable: true })
  calibrate?: CalibrationInput;
}

@ObjectType({ description: 'A what-if estimate; nothing is spent.' })
export class PrivacyEstimate {
  @Field(() => Float)
  epsilon: number;

  @Field(() => Float)
  delta: number;

  @Field(() => Accountant, { description: 'The accountant that produced the number (AUTO resolves to one).' })
  accountant: Accountant;

  @Field(() => Float, { nullable: true, description: 'The calibrated noise multiplier, for `calibrate`.' })
  noiseMultiplier?: number | null;
}
