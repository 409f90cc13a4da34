/** Typed errors of the dataset readers. `code` is stable and safe to branch on. */
export type DatasetErrorCode =
  /** The location (or one of the required files) does not exist or is not readable. */
  | 'DATASET_NOT_FOUND'
  /** A directory holds zero or several candidate IDX file pairs. */
  | 'DATASET_AMBIGUOUS'
  /** Bad magic number, unsupported IDX type/rank, undecodable image, unsupported file, trailing bytes. */
  | 'DATASET_PARSE_ERROR'
  /** A file ends before the data its header declares (also a cut-off gzip stream). */
  | 'DATASET_TRUNCATED'
  /** The images and labels files declare different example counts. */
  | 'DATASET_COUNT_MISMATCH'
  /** The dataset contains no examples (or an image folder no class subfolders). */
  | 'DATASET_EMPTY'
  /** The data no longer matches the fingerprint it was registered with. */
  | 'DATASET_CHANGED';

export class DatasetFormatError extends Error {
  constructor(
    readonly code: DatasetErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DatasetFormatError';
  }
}
