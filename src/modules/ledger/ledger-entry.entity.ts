import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { PrivacyEvent } from '../../privacy';

export enum LedgerEntryKind {
  DATASET_REGISTERED = 'DATASET_REGISTERED',
  RESERVATION = 'RESERVATION',
  COMMIT = 'COMMIT',
  ABORT = 'ABORT',
  EXTERNAL_RELEASE = 'EXTERNAL_RELEASE',
  BUDGET_CHANGE = 'BUDGET_CHANGE',
}

/** One immutable, hash-chained ledger entry. State columns (epsilon_*) describe the budget right after it. */
@Entity({ name: 'ledger_entries' })
export class LedgerEntry {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'dataset_id', type: 'uuid' })
  datasetId: string;

  @Column('integer')
  seq: number;

  @Column({ type: 'enum', enum: LedgerEntryKind, enumName: 'ledger_entry_kind' })
  kind: LedgerEntryKind;

  @Column({ name: 'reservation_id', type: 'uuid', nullable: true })
  reservationId: string | null;

  @Column('jsonb')
  events: PrivacyEvent[];

  @Column({ name: 'requester_id', type: 'uuid', nullable: true })
  requesterId: string | null;

  @Column({ name: 'requester_name', type: 'text', nullable: true })
  requesterName: string | null;

  @Column('text')
  purpose: string;

  @Column('jsonb')
  details: Record<string, unknown>;

  @Column({ name: 'epsilon_limit', type: 'double precision' })
  epsilonLimit: number;

  @Column({ name: 'epsilon_spent', type: 'double precision' })
  epsilonSpent: number;

  @Column({ name: 'epsilon_reserved', type: 'double precision' })
  epsilonReserved: number;

  @Column('text')
  accountant: string;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'prev_hash', type: 'text' })
  prevHash: string;

  @Column('text')
  hash: string;
}
