import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { PrivacyEvent } from '../../privacy';

export enum ReservationStatus {
  OPEN = 'OPEN',
  COMMITTED = 'COMMITTED',
  ABORTED = 'ABORTED',
}

/** Current state of a reservation (its history is in the ledger). An OPEN one counts as spent. */
@Entity({ name: 'reservations' })
export class Reservation {
  @PrimaryColumn('uuid')
  id: string;

  @Column({ name: 'dataset_id', type: 'uuid' })
  datasetId: string;

  @Column({ type: 'enum', enum: ReservationStatus, enumName: 'reservation_status' })
  status: ReservationStatus;

  @Column('jsonb')
  events: PrivacyEvent[];

  @Column('text')
  purpose: string;

  @Column({ name: 'purpose_kind', type: 'text' })
  purposeKind: string;

  @Column({ name: 'requester_id', type: 'uuid', nullable: true })
  requesterId: string | null;

  /** Set once any noisy release was made under it; from then on it can only be committed. */
  @Column('boolean')
  released: boolean;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  @Column({ name: 'resolved_at', type: 'timestamptz', nullable: true })
  resolvedAt: Date | null;
}
