import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Registered backbones, finetune jobs (the job table is also the queue: workers claim rows with
 * FOR UPDATE SKIP LOCKED; a job is inserted in the same transaction as its budget reservation) and the
 * immutable trained models (head weights, class names, backbone reference and privacy guarantee).
 */
export class FinetuneJobsModels1764300200000 implements MigrationInterface {
  name = 'FinetuneJobsModels1764300200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE backbones (
        id text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
        spec jsonb NOT NULL,
        created_by uuid REFERENCES api_keys(id),
        created_at timestamptz NOT NULL DEFAULT now()
      )`);

    await q.query(`CREATE TYPE finetune_job_status AS ENUM ('QUEUED', 'EXTRACTING', 'TRAINING', 'SUCCEEDED', 'FAILED', 'CANCELLED')`);
    await q.query(`
      CREATE TABLE finetune_jobs (
        id uuid PRIMARY KEY,
        dataset_id uuid NOT NULL REFERENCES datasets(id),
        reservation_id uuid NOT NULL UNIQUE REFERENCES reservations(id),
        requested_by uuid REFERENCES api_keys(id),
        status finetune_job_status NOT NULL DEFAULT 'QUEUED',
        method text NOT NULL,
        model_name text NOT NULL,
        options jsonb NOT NULL,
        noise_multiplier double precision NOT NULL CHECK (noise_multiplier > 0),
        delta double precision NOT NULL,
        target_epsilon double precision,
        epsilon double precision NOT NULL,
        events jsonb NOT NULL,
        progress double precision NOT NULL DEFAULT 0,
        stage_detail text NOT NULL DEFAULT '',
        error text,
        error_code text,
        worker_id text,
        heartbeat_at timestamptz,
        cancel_requested boolean NOT NULL DEFAULT false,
        trace_context jsonb NOT NULL DEFAULT '{}',
        timings jsonb NOT NULL DEFAULT '{}',
        model_id uuid,
        created_at timestamptz NOT NULL DEFAULT now(),
        started_at timestamptz,
        finished_at timestamptz
      )`);
    await q.query(`CREATE INDEX finetune_jobs_queue_idx ON finetune_jobs (created_at) WHERE status = 'QUEUED'`);
    await q.query(`CREATE INDEX finetune_jobs_running_idx ON finetune_jobs (heartbeat_at) WHERE status IN ('EXTRACTING', 'TRAINING')`);
    await q.query(`CREATE INDEX finetune_jobs_dataset_idx ON finetune_jobs (dataset_id, created_at)`);

    await q.query(`
      CREATE TABLE models (
        id uuid PRIMARY KEY,
        name text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$'),
        version integer NOT NULL CHECK (version >= 1),
        dataset_id uuid NOT NULL REFERENCES datasets(id),
        job_id uuid REFERENCES finetune_jobs(id),
        backbone_id text NOT NULL,
        backbone jsonb NOT NULL,
        feature_preprocessing jsonb NOT NULL,
        class_names text[] NOT NULL,
        dim integer NOT NULL,
        weights bytea NOT NULL,
        bias bytea,
        guarantee jsonb NOT NULL,
        evaluation jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (name, version)
      )`);
    await q.query(`CREATE INDEX models_dataset_idx ON models (dataset_id, created_at)`);
    await q.query(`ALTER TABLE finetune_jobs ADD CONSTRAINT finetune_jobs_model_fk FOREIGN KEY (model_id) REFERENCES models(id)`);
    // Models are immutable versions.
    await q.query(`
      CREATE FUNCTION models_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'model versions are immutable (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
      END $$`);
    await q.query(`CREATE TRIGGER models_no_update BEFORE UPDATE ON models FOR EACH ROW EXECUTE FUNCTION models_immutable()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE finetune_jobs DROP CONSTRAINT finetune_jobs_model_fk`);
    await q.query(`DROP TABLE models`);
    await q.query(`DROP FUNCTION models_immutable`);
    await q.query(`DROP TABLE finetune_jobs`);
    await q.query(`DROP TYPE finetune_job_status`);
    await q.query(`DROP TABLE backbones`);
  }
}
