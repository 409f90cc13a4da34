/**
 * How clients address a model: its id (uuid), `name@version` (`fashion@3` or `fashion@v3`), `name@alias`
 * (`fashion@production`), or a bare `name` (its highest deployed version).
 */
import { BadInputError } from '../../common/errors/domain-errors';
import { isUuid } from '../../common/uuid';

export type ModelRef =
  | { kind: 'id'; id: string; text: string }
  | { kind: 'version'; name: string; version: number; text: string }
  | { kind: 'alias'; name: string; alias: string; text: string }
  | { kind: 'latest'; name: string; text: string };

export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;
/** Lower-case, starting with a letter; `v<digits>` is reserved for versions. */
export const ALIAS_PATTERN = /^[a-z][a-z0-9_-]{0,62}$/;

export function isValidAlias(alias: string): boolean {
  return ALIAS_PATTERN.test(alias) && !/^v\d+$/.test(alias);
}

export function parseModelRef(text: string, field = 'model'): ModelRef {
  const raw = (text ?? '').trim();
  if (!raw || raw.length > 200) throw new BadInputError(`${field} must be a model id, name, name@version or name@alias`, { field, reason: 'INVALID_MODEL_REF' });
  if (isUuid(raw)) return { kind: 'id', id: raw.toLowerCase(), text: raw };
  const at = raw.lastIndexOf('@');
  const name = at < 0 ? raw : raw.slice(0, at);
  if (!MODEL_NAME_PATTERN.test(name)) {
    throw new BadInputError(`${field}: "${name}" is not a model name (letters, digits, _ . -; then optionally @version or @alias)`, { field, reason: 'INVALID_MODEL_REF' });
  }
  if (at < 0) return { kind: 'latest', name, text: raw };
  const suffix = raw.slice(at + 1);
  const version = /^v?(\d{1,9})$/.exec(suffix);
  if (version) {
    const v = Number(version[1]);
    if (v < 1) throw new BadInputError(`${field}: versions start at 1`, { field, reason: 'INVALID_MODEL_REF' });
    return { kind: 'version', name, version: v, text: raw };
  }
  if (!isValidAlias(suffix)) {
    throw new BadInputError(`${field}: "${suffix}" is neither a version number nor an alias (lower-case letters, digits, _ -)`, { field, reason: 'INVALID_MODEL_REF' });
  }
  return { kind: 'alias', name, alias: suffix, text: raw };
}
