import { Field, Float, ID, Int, ObjectType, registerEnumType } from '@nestjs/graphql';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

export enum DatasetFormat {
  IDX = 'IDX',
  IMAGE_FOLDER = 'IMAGE_FOLDER',
}
registerEnumType(DatasetFormat, {
  name: 'DatasetFormat',
  description: 'IDX: MNIST-style image and label files (gzipped or not); IMAGE_FOLDER: one subfolder of PNG/JPEG files per class.',
});

/** Doubles come back from pg as strings only for numeric; float8 arrives as number. */
@ObjectType({ description: 'A private dataset registered with a privacy budget.' })
@Entity({ name: 'datasets' })
export class Dataset {
  @Field(() => ID)
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Field()
  @Column('text')
  name: string;

  @Field()
  @Column('text')
  description: string;

  @Field(() => DatasetFormat)
  @Column({ type: 'enum', enum: DatasetFormat, enumName: 'dataset_format' })
  format: DatasetFormat;

  @Field({ description: 'Where the files are, on the servers that run jobs.' })
  @Column('text')
  location: string;

  @Field(() => [String])
  @Column({ name: 'class_names', type: 'text', array: true })
  classNames: string[];

  @Field(() => Int, { description: 'Declared number of examples n: public metadata, checked at registration.' })
  @Column({ name: 'declared_size', type: 'integer' })
  declaredSize: number;

  @Field({ description: 'What one neighbouring change adds or removes (one example).' })
  @Column({ name: 'privacy_unit', type: 'text' })
  privacyUnit: string;

  @Field({ description: 'sha256 over the data at registration; work refuses to run if the files changed.' })
  @Column('text')
  fingerprint: string;

  @Column({ name: 'epsilon_limit', type: 'double precision' })
  epsilonLimit: number;

  @Field(() => Float)
  @Column({ type: 'double precision' })
  delta: number;

  @Field({ description: 'true when delta above 1/n was accepted explicitly.' })
  @Column({ name: 'delta_forced', type: 'boolean' })
  deltaForced: boolean;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy: string | null;

  @Field()
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
