import { Column, Entity, PrimaryColumn } from 'typeorm';

/** A model version that every API replica serves (row present = deployed). */
@Entity({ name: 'model_deployments' })
export class ModelDeployment {
  @PrimaryColumn({ name: 'model_id', type: 'uuid' })
  modelId: string;

  @Column({ name: 'deployed_by', type: 'uuid', nullable: true })
  deployedBy: string | null;

  @Column({ name: 'deployed_at', type: 'timestamptz' })
  deployedAt: Date;
}
