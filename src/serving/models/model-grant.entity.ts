import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * Lets an API key (an inference_client) classify with every version of one model NAME, so that new
 * versions and alias moves keep working without new grants.
 */
@Entity({ name: 'model_grants' })
export class ModelGrant {
  @PrimaryColumn({ name: 'model_name', type: 'text' })
  modelName: string;

  @PrimaryColumn({ name: 'api_key_id', type: 'uuid' })
  apiKeyId: string;

  @Column({ name: 'granted_by', type: 'uuid', nullable: true })
  grantedBy: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
