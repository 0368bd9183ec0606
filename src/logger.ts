import { createRequire } from 'node:module';
import { type DestinationStream, pino } from 'pino';

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

/** How the default logger writes: coloured lines for people, or JSON lines for machines. */
export type LogFormat = 'pretty' | 'json';

/** Options of {@link createDefaultLogger}, mainly for tests and embedding. */
export interface DefaultLoggerOptions {
  /** Where to write. Default: process.stdout. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Forces a format; default: `ASTERAMISK_LOG_FORMAT`, else `pretty` on a TTY and `json` otherwise. */
  format?: LogFormat;
  /** Forces a level; default: `ASTERAMISK_LOG_LEVEL`, else `info` (`silent` under vitest). */
  level?: string;
  /** The environment to read (default process.env). */
  env?: Record<string, string | undefined>;
}

/**
 * The format the default logger uses: `ASTERAMISK_LOG_FORMAT` (`json` or `pretty`) when set,
 * else `pretty` when the stream is a terminal and `json` otherwise (files, pipes, log shippers).
 */
export function chooseLogFormat(
  isTTY: boolean | undefined,
  env: Record<string, string | undefined>,
): LogFormat {
  const forced = env.ASTERAMISK_LOG_FORMAT?.trim().toLowerCase();
  if (forced === 'json' || forced === 'pretty') return forced;
  return isTTY ? 'pretty' : 'json';
}

/** Bindings shown in the head of a pretty line rather than as fields. */
const PRETTY_HEAD = '{if call}[{call}] {end}{if from}{from}→{to} {end}{if number}{number} {end}{msg}';

/**
 * pino-pretty as a synchronous stream (it transforms in this thread: no worker, no lost lines at
 * exit). Loaded only when the pretty format is chosen, so production JSON logging never loads it.
 */
function prettyStream(stream: NodeJS.WritableStream & { isTTY?: boolean }): DestinationStream {
  const require = createRequire(import.meta.url);
  const build = require('pino-pretty') as typeof import('pino-pretty');
  return build({
    // stdout through pino-pretty's own synchronous writer; any other stream as given.
    destination: stream === process.stdout ? 1 : stream,
    sync: true,
    colorize: stream.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,name,app,call,from,to,number',
    messageFormat: PRETTY_HEAD,
    singleLine: true,
  });
}

/**
 * The default logger: pino to stdout. On a terminal, coloured human-readable lines (time, level,
 * call id, caller → number, message, then the other fields such as `verb` and `ms`); JSON lines
 * otherwise. `ASTERAMISK_LOG_FORMAT=json|pretty` forces one; the level comes from
 * `ASTERAMISK_LOG_LEVEL` (default `info`, and `silent` under vitest so tests print nothing unless
 * asked). Secrets are redacted in both formats.
 */
export function createDefaultLogger(options: DefaultLoggerOptions = {}): Logger {
  const env = options.env ?? process.env;
  const level = options.level ?? env.ASTERAMISK_LOG_LEVEL ?? (env.VITEST ? 'silent' : 'info');
  const stream = options.stream ?? process.stdout;
  const format = options.format ?? chooseLogFormat(stream.isTTY, env);
  const destination: DestinationStream =
    format === 'pretty' ? prettyStream(stream) : (stream as unknown as DestinationStream);
  return pino(
    {
      name: 'asteramisk',
      level,
      redact: { paths: [...SECRET_KEYS, ...SECRET_KEYS.map((k) => `*.${k}`)], censor: '[redacted]' },
    },
    options.stream || format === 'pretty' ? destination : undefined,
  );
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
