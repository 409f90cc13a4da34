import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Every change to an API key (revocation above all) is announced on the `privatune_api_keys` channel with
 * the key's id, in the changing transaction (PostgreSQL delivers it at commit). API processes keep
 * authenticated keys in memory and drop a key when its notification arrives (ApiKeyCache), so a
 * revocation made by any process, the CLI or plain SQL stops the key everywhere.
 */
export class ApiKeyChanges1764300400000 implements MigrationInterface {
  name = 'ApiKeyChanges1764300400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION api_keys_announce_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_notify('privatune_api_keys', OLD.id::text);
        RETURN NULL;
      END $$`);
    await q.query(`CREATE TRIGGER api_keys_changed AFTER UPDATE OR DELETE ON api_keys FOR EACH ROW EXECUTE FUNCTION api_keys_announce_change()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER api_keys_changed ON api_keys`);
    await q.query(`DROP FUNCTION api_keys_announce_change()`);
  }
}
