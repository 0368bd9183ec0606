import { inspect } from 'node:util';
import type { LogFields, Logger } from '../../src/logger.js';

/** One line a {@link capturingLogger} kept: its level, message and fields (child bindings merged). */
export interface LogLine {
  level: string;
  msg: string;
  fields: LogFields;
}

/**
 * A Logger that keeps what the library logs in `lines`, for tests that check what was (or was
 * not) reported. `keep` picks the lines to keep; default all.
 */
export function capturingLogger(lines: LogLine[], keep: (line: LogLine) => boolean = () => true): Logger {
  const make = (bindings: LogFields): Logger => {
    const at =
      (level: string) =>
      (fields: LogFields, msg = ''): void => {
        const line = { level, msg, fields: { ...bindings, ...fields } };
        if (keep(line)) lines.push(line);
      };
    return {
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({});
}

/**
 * A Logger that keeps every line, at every level, as text (`level message {fields}`, fields
 * rendered in full), for tests that grep what was logged (e.g. for a secret).
 */
export function textLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = capturingLogger([], (line) => {
    lines.push(`${line.level} ${line.msg} ${inspect(line.fields, { depth: 6 })}`);
    return false;
  });
  return { logger, lines };
}
