/**
 * The privacy ledger. Every change of a dataset's budget state is one append-only, hash-chained entry,
 * written in the same transaction as the state change, while the dataset's row is locked (SELECT ... FOR
 * UPDATE), so that requests on one dataset are serialised and concurrent requests can never together
 * exceed its limit. Budget = the accountant over committed releases plus open reservations.
 */
import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { BadInputError, ConflictError, DomainError, NotFoundError, PreconditionFailedError } from '../../common/errors/domain-errors';
import { isUuid } from '../../common/uuid';
import { parsePrivacyEvents, PrivacyEvent } from '../../privacy';
import type { Principal } from '../auth/principal';
import { Dataset } from '../datasets/dataset.entity';
import { BudgetState, budgetState, composedEpsilon } from './budget';
import { canonicalJson, ChainVerification, entryHash, GENESIS_HASH, verifyChain } from './hash-chain';
import { LedgerEntry, LedgerEntryKind } from './ledger-entry.entity';
import { InsufficientBudgetError } from './ledger.errors';
import { ledgerOperations } from './ledger.metrics';
import { Reservation, ReservationStatus } from './reservation.entity';

export interface SpendRequest {
  datasetId: string;
  /** Untrusted events in the accounting schema; validated here. */
  events: unknown;
  purpose: string;
  purposeKind: 'FINETUNE_JOB' | 'EXTERNAL_RELEASE' | 'MANUAL' | 'EVALUATION';
  requester: Principal | null;
  idempotencyKey?: string;
  /** Extra fields recorded in the entry's details (e.g. job id, method). */
  details?: Record<string, unknown>;
}

export interface SpendResult {
  reservation: Reservation;
  entry: LedgerEntry;
  /** true when an earlier request with the same idempotency key produced this result. */
  replayed: boolean;
}

type Tx = EntityManager;

@Injectable()
export class LedgerService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  // ---- spending -------------------------------------------------------------------------------------

  /** Reserves budget for releases about to be made. Refused with InsufficientBudgetError if it would overspend. */
  reserve(req: SpendRequest, tx?: Tx): Promise<SpendResult> {
    return counted('reservation', this.spend(req, 'reserve', tx));
  }

  /** Records a release made outside the platform: reserve and commit in one step, with the same check. */
  recordExternalRelease(req: SpendRequest): Promise<SpendResult> {
    return counted('external_release', this.spend(req, 'external'));
  }

  private async spend(req: SpendRequest, mode: 'reserve' | 'external', outer?: Tx): Promise<SpendResult> {
    const events = parsePrivacyEvents(req.events);
    if (events.length === 0) throw new BadInputError('events must list at least one release');
    const purpose = (req.purpose ?? '').trim();
    if (purpose.length > 500) throw new BadInputError('purpose must be at most 500 characters');
    const scope = `${mode}:${req.requester?.keyId ?? 'system'}`;
    const requestHash = sha256(canonicalJson({ datasetId: req.datasetId, events, purpose, purposeKind: req.purposeKind, details: req.details ?? {} }));

    const run = async (tx: Tx): Promise<SpendResult> => {
      const dataset = await this.lockDataset(tx, req.datasetId);
      if (req.idempotencyKey !== undefined) {
        const replay = await this.replay(tx, scope, req.idempotencyKey, requestHash);
        if (replay) return replay;
      }
      const { committed, open } = await this.activeEvents(tx, dataset.id);
      const before = composedEpsilon([...committed, ...open], dataset.delta).epsilon;
      const after = composedEpsilon([...committed, ...open, ...events], dataset.delta).epsilon;
      if (!(after <= dataset.epsilonLimit)) {
        const alone = composedEpsilon(events, dataset.delta).epsilon;
        throw new InsufficientBudgetError(dataset.id, alone, Math.max(0, dataset.epsilonLimit - before), dataset.epsilonLimit, after);
      }
      const now = new Date();
      const reservation = tx.create(Reservation, {
        id: randomUUID(),
        datasetId: dataset.id,
        status: mode === 'external' ? ReservationStatus.COMMITTED : ReservationStatus.OPEN,
        events,
        purpose,
        purposeKind: req.purposeKind,
        requesterId: req.requester?.keyId ?? null,
        released: mode === 'external',
        createdAt: now,
        resolvedAt: mode === 'external' ? now : null,
      });
      await tx.insert(Reservation, reservation);
      const state =
        mode === 'external'
          ? budgetState(dataset.epsilonLimit, dataset.delta, [...committed, ...events], open)
          : budgetState(dataset.epsilonLimit, dataset.delta, committed, [...open, ...events]);
      const entry = await this.append(tx, dataset, {
        kind: mode === 'external' ? LedgerEntryKind.EXTERNAL_RELEASE : LedgerEntryKind.RESERVATION,
        reservationId: reservation.id,
        events,
        requester: req.requester,
        purpose,
        details: { purposeKind: req.purposeKind, ...(req.details ?? {}) },
        state,
        createdAt: now,
      });
      if (req.idempotencyKey !== undefined) {
        const inserted = await tx.query(
          `INSERT INTO idempotency_records (scope, key, request_hash, result) VALUES ($1, $2, $3, $4)
           ON CONFLICT DO NOTHING RETURNING key`,
          [scope, req.idempotencyKey, requestHash, JSON.stringify({ reservationId: reservation.id, entryId: entry.id })],
        );
        // Someone else committed the same key meanwhile (another dataset): their request wins.
        if (inserted.length === 0) throw new ConflictError(`idempotencyKey ${req.idempotencyKey} was used by a concurrent request`);
      }
      return { reservation, entry, replayed: false };
    };
    if (req.idempotencyKey !== undefined && (req.idempotencyKey.length < 1 || req.idempotencyKey.length > 200)) {
      throw new BadInputError('idempotencyKey must be 1 to 200 characters');
    }
    return outer ? run(outer) : this.db.transaction('READ COMMITTED', run);
  }

  /** Marks that a noisy release was made under an open reservation; from then on it can only be committed. */
  async markReleased(reservationId: string, tx?: Tx): Promise<void> {
    const run = async (m: Tx) => {
      const r = await m.createQueryBuilder().update(Reservation).set({ released: true }).where('id = :id AND status = :open', { id: reservationId, open: ReservationStatus.OPEN }).execute();
      if (!r.affected) throw new PreconditionFailedError(`reservation ${reservationId} is not open`);
    };
    return tx ? run(tx) : this.db.transaction(run);
  }

  /** Commits an open reservation: its events become spent. Committing twice is a no-op that returns the state. */
  commit(reservationId: string, requester: Principal | null, details: Record<string, unknown> = {}, tx?: Tx): Promise<Reservation> {
    return counted('commit', this.resolve(reservationId, 'commit', requester, details, tx));
  }

  /** Aborts an open reservation, allowed only when nothing was released under it. */
  abort(reservationId: string, requester: Principal | null, details: Record<string, unknown> = {}, tx?: Tx): Promise<Reservation> {
    return counted('abort', this.resolve(reservationId, 'abort', requester, details, tx));
  }

  private async resolve(reservationId: string, action: 'commit' | 'abort', requester: Principal | null, details: Record<string, unknown>, outer?: Tx): Promise<Reservation> {
    const run = async (tx: Tx): Promise<Reservation> => {
      const found = await tx.findOne(Reservation, { where: { id: reservationId } });
      if (!found) throw new NotFoundError(`reservation ${reservationId} not found`);
      const dataset = await this.lockDataset(tx, found.datasetId);
      const reservation = (await tx.findOne(Reservation, { where: { id: reservationId } }))!; // re-read under the lock
      const target = action === 'commit' ? ReservationStatus.COMMITTED : ReservationStatus.ABORTED;
      if (reservation.status === target) return reservation;
      if (reservation.status !== ReservationStatus.OPEN) {
        throw new PreconditionFailedError(`reservation ${reservationId} is ${reservation.status}; it cannot be ${action === 'commit' ? 'committed' : 'aborted'}`);
      }
      if (action === 'abort' && reservation.released) {
        throw new PreconditionFailedError(`reservation ${reservationId} cannot be aborted: a noisy release was already made under it; commit it`);
      }
      const now = new Date();
      await tx.update(Reservation, { id: reservation.id }, { status: target, resolvedAt: now, ...(action === 'commit' ? { released: true } : {}) });
      const { committed, open } = await this.activeEvents(tx, dataset.id);
      await this.append(tx, dataset, {
        kind: action === 'commit' ? LedgerEntryKind.COMMIT : LedgerEntryKind.ABORT,
        reservationId: reservation.id,
        events: reservation.events,
        requester,
        purpose: reservation.purpose,
        details,
        state: budgetState(dataset.epsilonLimit, dataset.delta, committed, open),
        createdAt: now,
      });
      return { ...reservation, status: target, resolvedAt: now, released: action === 'commit' ? true : reservation.released };
    };
    return outer ? run(outer) : this.db.transaction('READ COMMITTED', run);
  }

  /** Sets a dataset's epsilon limit; never below what is already spent and reserved. */
  async changeBudget(datasetId: string, epsilonLimit: number, reason: string, requester: Principal): Promise<BudgetState> {
    if (!Number.isFinite(epsilonLimit) || epsilonLimit <= 0) throw new BadInputError('epsilonLimit must be a positive finite number');
    if (!reason?.trim()) throw new BadInputError('reason is required: the ledger records why the budget changed');
    return this.db.transaction('READ COMMITTED', async (tx) => {
      const dataset = await this.lockDataset(tx, datasetId);
      const { committed, open } = await this.activeEvents(tx, dataset.id);
      const used = composedEpsilon([...committed, ...open], dataset.delta).epsilon;
      if (epsilonLimit < used) {
        throw new BadInputError(`epsilonLimit ${epsilonLimit} is below the ${used.toFixed(6)} already spent and reserved`);
      }
      await tx.query(`UPDATE datasets SET epsilon_limit = $2 WHERE id = $1`, [dataset.id, epsilonLimit]);
      const state = budgetState(epsilonLimit, dataset.delta, committed, open);
      await this.append(tx, dataset, {
        kind: LedgerEntryKind.BUDGET_CHANGE,
        reservationId: null,
        events: [],
        requester,
        purpose: reason.trim(),
        details: { previousEpsilonLimit: dataset.epsilonLimit, epsilonLimit },
        state,
        createdAt: new Date(),
      });
      return state;
    });
  }

  /** The first entry of a dataset's chain, written in the registration transaction. */
  async recordRegistration(tx: Tx, dataset: Dataset, requester: Principal | null): Promise<LedgerEntry> {
    return this.append(tx, dataset, {
      kind: LedgerEntryKind.DATASET_REGISTERED,
      reservationId: null,
      events: [],
      requester,
      purpose: 'dataset registered',
      details: { fingerprint: dataset.fingerprint, declaredSize: dataset.declaredSize, format: dataset.format, deltaForced: dataset.deltaForced },
      state: budgetState(dataset.epsilonLimit, dataset.delta, [], []),
      createdAt: dataset.createdAt,
    });
  }

  // ---- reading --------------------------------------------------------------------------------------

  async budget(datasetId: string): Promise<BudgetState> {
    const dataset = await this.db.getRepository(Dataset).findOne({ where: { id: datasetId } });
    if (!dataset) throw new NotFoundError(`dataset ${datasetId} not found`);
    const { committed, open } = await this.activeEvents(this.db.manager, datasetId);
    return budgetState(dataset.epsilonLimit, dataset.delta, committed, open);
  }

  async getReservation(id: string): Promise<Reservation> {
    const r = await this.db.getRepository(Reservation).findOne({ where: { id } });
    if (!r) throw new NotFoundError(`reservation ${id} not found`);
    return r;
  }

  entries(datasetId: string, opts: { first: number; afterSeq?: number }): Promise<LedgerEntry[]> {
    return this.db.getRepository(LedgerEntry).createQueryBuilder('e')
      .where('e.dataset_id = :datasetId', { datasetId })
      .andWhere('e.seq > :after', { after: opts.afterSeq ?? 0 })
      .orderBy('e.seq', 'ASC')
      .limit(opts.first)
      .getMany();
  }

  allEntries(datasetId: string): Promise<LedgerEntry[]> {
    return this.db.getRepository(LedgerEntry).find({ where: { datasetId }, order: { seq: 'ASC' } });
  }

  async verify(datasetId: string): Promise<ChainVerification> {
    return verifyChain(await this.allEntries(datasetId));
  }

  // ---- internals ------------------------------------------------------------------------------------

  private async lockDataset(tx: Tx, datasetId: string): Promise<Dataset> {
    if (!isUuid(datasetId)) throw new NotFoundError(`dataset ${datasetId} not found`);
    const dataset = await tx.getRepository(Dataset).createQueryBuilder('d').setLock('pessimistic_write').where('d.id = :id', { id: datasetId }).getOne();
    if (!dataset) throw new NotFoundError(`dataset ${datasetId} not found`);
    return dataset;
  }

  /** Events of committed releases and of open reservations (aborted ones cost nothing). */
  private async activeEvents(tx: Tx, datasetId: string): Promise<{ committed: PrivacyEvent[]; open: PrivacyEvent[] }> {
    const rows: { status: ReservationStatus; events: PrivacyEvent[] }[] = await tx.query(
      `SELECT status, events FROM reservations WHERE dataset_id = $1 AND status <> 'ABORTED'`,
      [datasetId],
    );
    const committed: PrivacyEvent[] = [];
    const open: PrivacyEvent[] = [];
    for (const r of rows) (r.status === ReservationStatus.COMMITTED ? committed : open).push(...r.events);
    return { committed, open };
  }

  private async replay(tx: Tx, scope: string, key: string, requestHash: string): Promise<SpendResult | undefined> {
    const [found] = await tx.query(`SELECT request_hash, result FROM idempotency_records WHERE scope = $1 AND key = $2`, [scope, key]);
    if (!found) return undefined;
    if (found.request_hash !== requestHash) {
      throw new ConflictError(`idempotencyKey ${key} was already used with a different request`);
    }
    const { reservationId, entryId } = found.result as { reservationId: string; entryId: string };
    const reservation = await tx.findOneOrFail(Reservation, { where: { id: reservationId } });
    const entry = await tx.findOneOrFail(LedgerEntry, { where: { id: entryId } });
    return { reservation, entry, replayed: true };
  }

  private async append(
    tx: Tx,
    dataset: Dataset,
    e: {
      kind: LedgerEntryKind;
      reservationId: string | null;
      events: PrivacyEvent[];
      requester: Principal | null;
      purpose: string;
      details: Record<string, unknown>;
      state: BudgetState;
      createdAt: Date;
    },
  ): Promise<LedgerEntry> {
    const [last] = await tx.query(`SELECT seq, hash FROM ledger_entries WHERE dataset_id = $1 ORDER BY seq DESC LIMIT 1`, [dataset.id]);
    const fields = {
      id: randomUUID(),
      datasetId: dataset.id,
      seq: last ? last.seq + 1 : 1,
      kind: e.kind,
      reservationId: e.reservationId,
      events: e.events,
      requesterId: e.requester?.keyId ?? null,
      requesterName: e.requester?.name ?? null,
      purpose: e.purpose,
      details: e.details,
      epsilonLimit: e.state.epsilonLimit,
      epsilonSpent: e.state.epsilonSpent,
      epsilonReserved: e.state.epsilonReserved,
      accountant: e.state.accountant,
      // Millisecond precision, so that the stored value reads back exactly as hashed.
      createdAt: new Date(Math.floor(e.createdAt.getTime())),
      prevHash: last ? (last.hash as string) : GENESIS_HASH,
    };
    const entry = tx.create(LedgerEntry, { ...fields, hash: entryHash(fields) });
    await tx.getRepository(LedgerEntry).insert(entry as never); // jsonb columns defeat TypeORM's deep-partial typing
    return entry;
  }
}

/** Counts the operation in privatune_ledger_operations by outcome. */
async function counted<T>(kind: string, work: Promise<T>): Promise<T> {
  try {
    const result = await work;
    ledgerOperations.add(1, { kind, outcome: 'ok' });
    return result;
  } catch (err) {
    const outcome = err instanceof InsufficientBudgetError ? 'insufficient_budget' : err instanceof DomainError || (err as { code?: string }).code === 'INVALID_PRIVACY_INPUT' ? 'invalid' : 'error';
    ledgerOperations.add(1, { kind, outcome });
    throw err;
  }
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}
