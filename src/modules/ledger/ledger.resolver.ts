import { Args, ID, Mutation, Parent, Query, ResolveField, Resolver } from '@nestjs/graphql';
import { asPayload } from '../../common/graphql/payload-errors';
import { decodeCursor, pageSize, toConnection } from '../../common/graphql/relay';
import type { PrivacyEvent } from '../../privacy';
import { CurrentPrincipal, Roles } from '../auth/auth.decorators';
import { Principal } from '../auth/principal';
import { Role } from '../auth/role';
import { Dataset } from '../datasets/dataset.entity';
import { DatasetsService } from '../datasets/datasets.service';
import { toAccountingEvents, toEventObject } from '../privacy/dto/privacy-event.dto';
import { BudgetState } from './budget';
import {
  Budget,
  BudgetPoint,
  InsufficientBudgetErrorObject,
  LedgerArgs,
  LedgerEntryConnection,
  LedgerEntryObject,
  LedgerExport,
  LedgerExportFormat,
  LedgerVerification,
  ReservationObject,
  ResolveReservationInput,
  SpendBudgetInput,
  SpendBudgetResult,
} from './dto/ledger.dto';
import { exportLedgerCsv, exportLedgerJson } from './ledger-export';
import { LedgerEntry } from './ledger-entry.entity';
import { InsufficientBudgetError } from './ledger.errors';
import { LedgerService } from './ledger.service';
import { Reservation } from './reservation.entity';

const isSeqCursor = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

function toEntryObject(e: LedgerEntry): LedgerEntryObject {
  return { ...e, events: (e.events as PrivacyEvent[]).map(toEventObject), details: JSON.stringify(e.details) };
}

function toBudget(s: BudgetState): Budget {
  return Object.assign(new Budget(), s);
}

export function toInsufficientBudgetObject(err: unknown): InsufficientBudgetErrorObject | undefined {
  if (!(err instanceof InsufficientBudgetError)) return undefined;
  return Object.assign(new InsufficientBudgetErrorObject(), {
    message: err.message,
    datasetId: err.datasetId,
    requestedEpsilon: err.requestedEpsilon,
    remainingEpsilon: err.remainingEpsilon,
    epsilonLimit: err.epsilonLimit,
    epsilonAfter: err.epsilonAfter,
  });
}

@Resolver(() => Dataset)
export class DatasetLedgerResolver {
  constructor(private readonly ledgerService: LedgerService) {}

  @ResolveField(() => Budget)
  async budget(@Parent() dataset: Dataset): Promise<Budget> {
    return toBudget(await this.ledgerService.budget(dataset.id));
  }

  @ResolveField(() => LedgerEntryConnection, { description: 'The dataset\'s ledger, oldest entry first.' })
  async ledger(@Parent() dataset: Dataset, @Args() args: LedgerArgs): Promise<LedgerEntryConnection> {
    const first = pageSize(args.first);
    const afterSeq = decodeCursor(args.after, isSeqCursor);
    const rows = await this.ledgerService.entries(dataset.id, { first: first + 1, afterSeq });
    const conn = toConnection(rows, first, (e) => e.seq);
    return { pageInfo: conn.pageInfo, edges: conn.edges.map((e) => ({ cursor: e.cursor, node: toEntryObject(e.node) })) };
  }
}

@Resolver()
export class LedgerResolver {
  constructor(
    private readonly ledger: LedgerService,
    private readonly datasets: DatasetsService,
  ) {}

  private async reservationObject(r: Reservation, replayed: boolean): Promise<ReservationObject> {
    return Object.assign(new ReservationObject(), {
      ...r,
      events: r.events.map(toEventObject),
      replayed,
      budget: toBudget(await this.ledger.budget(r.datasetId)),
    });
  }

  private spendPayload(mode: 'external' | 'reserve', input: SpendBudgetInput, principal: Principal): Promise<typeof SpendBudgetResult> {
    return asPayload(async () => {
      const request = {
        datasetId: input.datasetId,
        events: toAccountingEvents(input.events),
        purpose: input.purpose,
        requester: principal,
        idempotencyKey: input.idempotencyKey ?? undefined,
      };
      const r = mode === 'external'
        ? await this.ledger.recordExternalRelease({ ...request, purposeKind: 'EXTERNAL_RELEASE' })
        : await this.ledger.reserve({ ...request, purposeKind: 'MANUAL' });
      return this.reservationObject(r.reservation, r.replayed);
    }, toInsufficientBudgetObject) as Promise<typeof SpendBudgetResult>;
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => SpendBudgetResult, { description: 'Records a DP release made outside the platform (reserve + commit in one step).' })
  recordPrivacyEvent(@Args('input') input: SpendBudgetInput, @CurrentPrincipal() principal: Principal): Promise<typeof SpendBudgetResult> {
    return this.spendPayload('external', input, principal);
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => SpendBudgetResult, { description: 'Reserves budget before releases made outside the platform; commit or abort it afterwards.' })
  reservePrivacyBudget(@Args('input') input: SpendBudgetInput, @CurrentPrincipal() principal: Principal): Promise<typeof SpendBudgetResult> {
    return this.spendPayload('reserve', input, principal);
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => ReservationObject, { description: 'Commits a reservation: its releases were made.' })
  async commitReservation(@Args('input') input: ResolveReservationInput, @CurrentPrincipal() principal: Principal): Promise<ReservationObject> {
    return this.reservationObject(await this.ledger.commit(input.reservationId, principal), false);
  }

  @Roles(Role.DATA_STEWARD)
  @Mutation(() => ReservationObject, { description: 'Aborts a reservation; refused if anything was released under it.' })
  async abortReservation(@Args('input') input: ResolveReservationInput, @CurrentPrincipal() principal: Principal): Promise<ReservationObject> {
    return this.reservationObject(await this.ledger.abort(input.reservationId, principal), false);
  }

  @Query(() => ReservationObject)
  async reservation(@Args('id', { type: () => ID }) id: string, @CurrentPrincipal() principal: Principal): Promise<ReservationObject> {
    const r = await this.ledger.getReservation(id);
    await this.datasets.assertCanRead(principal, r.datasetId);
    return this.reservationObject(r, false);
  }

  @Query(() => LedgerVerification, { description: 'Recomputes the hash chain of a dataset\'s ledger.' })
  async verifyLedger(@Args('datasetId', { type: () => ID }) datasetId: string, @CurrentPrincipal() principal: Principal): Promise<LedgerVerification> {
    await this.datasets.assertCanRead(principal, datasetId);
    return this.ledger.verify(datasetId);
  }

  @Query(() => LedgerExport)
  async exportLedger(
    @Args('datasetId', { type: () => ID }) datasetId: string,
    @Args('format', { type: () => LedgerExportFormat, defaultValue: LedgerExportFormat.JSON }) format: LedgerExportFormat,
    @CurrentPrincipal() principal: Principal,
  ): Promise<LedgerExport> {
    const dataset = await this.datasets.assertCanRead(principal, datasetId);
    const entries = await this.ledger.allEntries(datasetId);
    const base = `ledger-${dataset.name.replace(/[^A-Za-z0-9._-]+/g, '_')}`;
    return format === LedgerExportFormat.CSV
      ? { format, contentType: 'text/csv', filename: `${base}.csv`, content: exportLedgerCsv(entries) }
      : { format, contentType: 'application/json', filename: `${base}.json`, content: exportLedgerJson(dataset, entries) };
  }

  @Query(() => [BudgetPoint], { description: 'Spent and reserved epsilon after every ledger entry, oldest first.' })
  async budgetHistory(@Args('datasetId', { type: () => ID }) datasetId: string, @CurrentPrincipal() principal: Principal): Promise<BudgetPoint[]> {
    await this.datasets.assertCanRead(principal, datasetId);
    const entries = await this.ledger.allEntries(datasetId);
    return entries.map((e) => ({ time: e.createdAt, seq: e.seq, kind: e.kind, epsilonSpent: e.epsilonSpent, epsilonReserved: e.epsilonReserved, epsilonLimit: e.epsilonLimit }));
  }
}
