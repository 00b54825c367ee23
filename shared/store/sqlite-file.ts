import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ConfigError } from '../config-error.ts';

/**
 * The data directory cannot hold DevStats' files (full, unwritable, not a folder): stopped at start
 * with one line naming the file, what is wrong and what to do, and the configuration errors' exit
 * code, not a stack trace.
 */
class DataDirError extends ConfigError {
  override name = 'DataDirError';
}

/** SQLite says so (SQLITE_FULL, 13) when the disk, or the file's size limit, has no room left. */
export const isDiskFull = (error: unknown): boolean =>
  (error as { errcode?: number } | null)?.errcode === 13 ||
  /database or disk is full/.test((error as { message?: string } | null)?.message ?? '');

const FS_REASONS: Readonly<Record<string, string>> = {
  EEXIST: 'a file stands where its folder should be',
  ENOTDIR: 'a file stands where its folder should be',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
};

/** Why a file of the data directory could not be used, and what to do, in one line. */
function dataDirProblem(path: string, error: unknown): string {
  const { code, message } = error as { code?: string; message?: string };
  if (isDiskFull(error) || code === 'ENOSPC')
    return `cannot write ${path}: the disk is full; free space there, or set DEVSTATS_DATA_DIR to a folder with room`;
  const reason = (code !== undefined ? FS_REASONS[code] : undefined) ?? message ?? String(error);
  return `cannot write ${path}: ${reason}; set DEVSTATS_DATA_DIR to a writable folder`;
}

/** Opens (creating it and its folder) a SQLite file of the data directory, in WAL mode, then runs `setup`. */
export function openDatabase(path: string, setup: (db: DatabaseSync) => void): DatabaseSync {
  let db: DatabaseSync | undefined;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    setup(db);
    return db;
  } catch (error) {
    if (db?.isOpen === true) db.close();
    if (error instanceof ConfigError) throw error;
    throw new DataDirError(dataDirProblem(path, error));
  }
}
