import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Model serving: which model versions are deployed, the aliases (`production`, `canary`, ...) that point a
 * model name at one of its deployed versions, and which API keys may classify with which model names.
 *
 * `serving_state.version` is bumped by a statement trigger on every change to those three tables, in the
 * same transaction: every API replica polls it and reloads its in-memory view when it moves, so a change
 * made through any replica reaches all of them without a restart.
 */
export class Serving1764300300000 implements MigrationInterface {
  name = 'Serving1764300300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE model_deployments (
        model_id uuid PRIMARY KEY REFERENCES models(id),
        deployed_by uuid REFERENCES api_keys(id),
        deployed_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE model_aliases (
        model_name text NOT NULL,
        alias text NOT NULL CHECK (alias ~ '^[a-z][a-z0-9_-]{0,62}$' AND alias !~ '^v[0-9]+$'),
        model_id uuid NOT NULL REFERENCES model_deployments(model_id),
        updated_by uuid REFERENCES api_keys(id),
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (model_name, alias)
      )`);
    await q.query(`CREATE INDEX model_aliases_model_idx ON model_aliases (model_id)`);
    // An alias points at a version of its own name.
    await q.query(`
      CREATE FUNCTION model_alias_same_name() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM models m WHERE m.id = NEW.model_id AND m.name = NEW.model_name) THEN
          RAISE EXCEPTION 'alias %@% must point at a version of model %', NEW.model_name, NEW.alias, NEW.model_name USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
      END $$`);
    await q.query(`CREATE TRIGGER model_aliases_same_name BEFORE INSERT OR UPDATE ON model_aliases FOR EACH ROW EXECUTE FUNCTION model_alias_same_name()`);

    await q.query(`
      CREATE TABLE model_grants (
        model_name text NOT NULL,
        api_key_id uuid NOT NULL REFERENCES api_keys(id),
        granted_by uuid REFERENCES api_keys(id),
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (model_name, api_key_id)
      )`);
    await q.query(`CREATE INDEX model_grants_key_idx ON model_grants (api_key_id)`);

    await q.query(`CREATE TABLE serving_state (id integer PRIMARY KEY CHECK (id = 1), version bigint NOT NULL, changed_at timestamptz NOT NULL DEFAULT now())`);
    await q.query(`INSERT INTO serving_state (id, version) VALUES (1, 1)`);
    await q.query(`
      CREATE FUNCTION serving_state_bump() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        UPDATE serving_state SET version = version + 1, changed_at = now() WHERE id = 1;
        RETURN NULL;
      END $$`);
    for (const table of ['model_deployments', 'model_aliases', 'model_grants']) {
      await q.query(`CREATE TRIGGER ${table}_bump AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION serving_state_bump()`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE model_grants`);
    await q.query(`DROP TABLE model_aliases`);
    await q.query(`DROP TABLE model_deployments`);
    await q.query(`DROP TABLE serving_state`);
    await q.query(`DROP FUNCTION serving_state_bump`);
    await q.query(`DROP FUNCTION model_alias_same_name`);
  }
}
