import { Column, Entity, PrimaryColumn } from 'typeorm';

/** `name@alias` (e.g. fashion@production) points at one deployed version of that name; moved atomically. */
@Entity({ name: 'model_aliases' })
export class ModelAlias {
  @PrimaryColumn({ name: 'model_name', type: 'text' })
  modelName: string;

  @PrimaryColumn('text')
  alias: string;

  @Column({ name: 'model_id', type: 'uuid' })
  modelId: string;

  @Column({ name: 'updated_by', type: 'uuid', nullable: true })
  updatedBy: string | null;

  @Column({ name: 'updated_at', type: 'timestamptz' })
  updatedAt: Date;
}
