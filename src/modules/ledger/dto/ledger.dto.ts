import { ArgsType, createUnionType, Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { ValidationError } from '../../../common/graphql/payload-errors';
import { Connection, PageArgs } from '../../../common/graphql/relay';
import { PrivacyEventInput, PrivacyEventObject } from '../../privacy/dto/privacy-event.dto';
import { LedgerEntryKind } from '../ledger-entry.entity';
import { ReservationStatus } from '../reservation.entity';

registerEnumType(LedgerEntryKind, { name: 'LedgerEntryKind' });
registerEnumType(ReservationStatus, { name: 'ReservationStatus' });

export enum LedgerExportFormat {
  JSON = 'JSON',
  CSV = 'CSV',
}
registerEnumType(LedgerExportFormat, { name: 'LedgerExportFormat' });

@ObjectType({ description: 'Budget of a dataset at its delta. Composed epsilons come from the accountant, not sums.' })
export class Budget {
  @Field(() => Float)
  epsilonLimit: number;

  @Field(() => Float)
  delta: number;

  @Field(() => Float, { description: 'Composed epsilon of committed releases.' })
  epsilonSpent: number;

  @Field(() => Float, { description: 'What open reservations add to the composed epsilon.' })
  epsilonReserved: number;

  @Field(() => Float, { description: 'epsilonLimit minus the composed epsilon of spent and reserved releases.' })
  epsilonRemaining: number;

  @Field({ description: 'Accountant that composed the events (exact or pld; none when nothing was spent).' })
  accountant: string;

  @Field(() => Float, { description: 'Sum of each release\'s own epsilon: what naive composition would claim, for comparison.' })
  naiveEpsilonSum: number;
}

@ObjectType('LedgerEntry', { description: 'One immutable, hash-chained entry of a dataset\'s privacy ledger.' })
export class LedgerEntryObject {
  @Field(() => ID)
  id: string;

  @Field(() => Int)
  seq: number;

  @Field(() => LedgerEntryKind)
  kind: LedgerEntryKind;

  @Field(() => ID, { nullable: true })
  reservationId: string | null;

  @Field(() => [PrivacyEventObject], { description: 'The releases this entry is about.' })
  events: PrivacyEventObject[];

  @Field(() => String, { nullable: true })
  requesterId: string | null;

  @Field(() => String, { nullable: true })
  requesterName: string | null;

  @Field()
  purpose: string;

  @Field({ description: 'Details as JSON text (job id, previous limit, ...).' })
  details: string;

  @Field(() => Float, { description: 'Limit right after this entry.' })
  epsilonLimit: number;

  @Field(() => Float, { description: 'Spent epsilon right after this entry.' })
  epsilonSpent: number;

  @Field(() => Float, { description: 'Reserved epsilon right after this entry.' })
  epsilonReserved: number;

  @Field()
  accountant: string;

  @Field()
  createdAt: Date;

  @Field()
  prevHash: string;

  @Field()
  hash: string;
}

@ObjectType()
export class LedgerEntryConnection extends Connection(LedgerEntryObject, 'LedgerEntry') {}

@ArgsType()
export class LedgerArgs extends PageArgs {}

@ObjectType('BudgetReservation', { description: 'Budget held for releases; OPEN counts as spent until committed or aborted.' })
export class ReservationObject {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  datasetId: string;

  @Field(() => ReservationStatus)
  status: ReservationStatus;

  @Field(() => [PrivacyEventObject])
  events: PrivacyEventObject[];

  @Field()
  purpose: string;

  @Field()
  purposeKind: string;

  @Field({ description: 'Whether a noisy release was made under it (then it can no longer be aborted).' })
  released: boolean;

  @Field()
  createdAt: Date;

  @Field(() => Date, { nullable: true })
  resolvedAt: Date | null;

  @Field({ description: 'true when this answer replays an earlier request with the same idempotency key.' })
  replayed: boolean;

  @Field(() => Budget, { description: 'The dataset budget right after this request.' })
  budget: Budget;
}

@ObjectType('InsufficientBudgetError', { description: 'The request would exceed the dataset\'s budget; nothing was spent.' })
export class InsufficientBudgetErrorObject {
  @Field()
  message: string;

  @Field(() => ID)
  datasetId: string;

  @Field(() => Float, { description: 'Epsilon of the requested releases on their own.' })
  requestedEpsilon: number;

  @Field(() => Float, { description: 'Budget left before the request.' })
  remainingEpsilon: number;

  @Field(() => Float)
  epsilonLimit: number;

  @Field(() => Float, { description: 'Composed epsilon the dataset would have reached.' })
  epsilonAfter: number;
}

@InputType()
export class SpendBudgetInput {
  @Field(() => ID)
  datasetId: string;

  @Field(() => [PrivacyEventInput], { description: 'Exactly the releases performed (or about to be).' })
  events: PrivacyEventInput[];

  @Field({ description: 'What the release is for, e.g. "2026 census table, DP counts".' })
  purpose: string;

  @Field(() => String, { nullable: true, description: 'Same key and input: the first result is returned and nothing is spent again.' })
  idempotencyKey?: string;
}

export const SpendBudgetResult = createUnionType({
  name: 'SpendBudgetResult',
  types: () => [ReservationObject, InsufficientBudgetErrorObject, ValidationError] as const,
  resolveType: (v) =>
    v instanceof ValidationError ? ValidationError : v instanceof InsufficientBudgetErrorObject ? InsufficientBudgetErrorObject : ReservationObject,
});

@InputType()
export class ResolveReservationInput {
  @Field(() => ID)
  reservationId: string;
}

@ObjectType()
export class LedgerVerification {
  @Field()
  valid: boolean;

  @Field(() => Int)
  entries: number;

  @Field(() => Int, { nullable: true, description: 'seq of the first entry whose hash or link is wrong.' })
  firstInvalidEntry: number | null;

  @Field(() => String, { nullable: true })
  reason: string | null;
}

@ObjectType()
export class LedgerExport {
  @Field(() => LedgerExportFormat)
  format: LedgerExportFormat;

  @Field()
  contentType: string;

  @Field()
  filename: string;

  @Field()
  content: string;
}

@ObjectType({ description: 'Budget use after one ledger entry, for charts.' })
export class BudgetPoint {
  @Field()
  time: Date;

  @Field(() => Int)
  seq: number;

  @Field(() => LedgerEntryKind)
  kind: LedgerEntryKind;

  @Field(() => Float)
  epsilonSpent: number;

  @Field(() => Float)
  epsilonReserved: number;

  @Field(() => Float)
  epsilonLimit: number;
}
