import { pino } from 'pino';

/** Log fields: structured data attached to one log line. */
export type LogFields = Record<string, unknown>;

/**
 * The logging surface asteramisk needs. A pino logger fits as is; so does any object with these
 * methods (bunyan, winston's child loggers, a test spy). `child` is optional: without it, the
 * library merges the bindings itself.
 */
export interface Logger {
  debug(fields: LogFields, message?: string): void;
  info(fields: LogFields, message?: string): void;
  warn(fields: LogFields, message?: string): void;
  error(fields: LogFields, message?: string): void;
  child?(bindings: LogFields): Logger;
}

/** Keys whose values are never written to a log, wherever they appear in the first two levels. */
const SECRET_KEYS = [
  'password',
  'secret',
  'apiKey',
  'ariPassword',
  'amiPassword',
  'openaiApiKey',
  'authorization',
];

/**
 * The default logger: pino to stdout, level from `ASTERAMISK_LOG_LEVEL` (default `info`, and
 * `silent` under vitest so tests print nothing unless asked).
 */
export function createDefaultLogger(): Logger {
  const level = process.env.ASTERAMISK_LOG_LEVEL ?? (process.env.VITEST ? 'silent' : 'info');
  return pino({
    name: 'asteramisk',
    level,
    redact: { paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`)], censor: '[redacted]' },
  });
}

/** A child logger carrying `bindings` on every line, whether or not `parent` implements `child`. */
export function childLogger(parent: Logger, bindings: LogFields): Logger {
  if (parent.child) return parent.child(bindings);
  const merge = (fields: LogFields): LogFields => ({ ...bindings, ...fields });
  return {
    debug: (f, m) => parent.debug(merge(f), m),
    info: (f, m) => parent.info(merge(f), m),
    warn: (f, m) => parent.warn(merge(f), m),
    error: (f, m) => parent.error(merge(f), m),
    child: (more) => childLogger(parent, { ...bindings, ...more }),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silentLogger,
};
