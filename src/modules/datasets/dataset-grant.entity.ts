import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Gives an ml_engineer key access to one dataset. */
@Entity({ name: 'dataset_grants' })
export class DatasetGrant {
  @PrimaryColumn({ name: 'dataset_id', type: 'uuid' })
  datasetId: string;

  @PrimaryColumn({ name: 'api_key_id', type: 'uuid' })
  apiKeyId: string;

  @Column({ name: 'granted_by', type: 'uuid', nullable: true })
  grantedBy: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
