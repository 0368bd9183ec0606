import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InvalidInputError } from '../errors.js';

/** What a call file asks Asterisk's pbx_spool to do. */
export interface CallFileSpec {
  /** Dial string, e.g. `PJSIP/bob`. */
  channel: string;
  /** `"Name" <number>`. */
  callerId?: string;
  /** Seconds to ring before giving up (WaitTime). */
  waitTime: number;
  /** Retries after the first attempt (MaxRetries). Default 0. */
  maxRetries?: number;
  /** Seconds between retries (RetryTime). Default 60. */
  retryTime?: number;
  /** Run an application once answered… */
  application?: { name: string; data: string };
  /** …or continue in the dialplan. */
  dialplan?: { context: string; extension: string; priority: number };
  /** Channel variables (Setvar). */
  variables?: Record<string, string>;
}

/** What Asterisk reported for a call file it archived (`Status:` in outgoing_done). */
export type CallFileStatus = 'Completed' | 'Expired' | 'Failed';

/** Refuses values that would add or break call-file lines. */
function field(name: string, value: string): string {
  if (/[\r\n\0]/.test(value))
    throw new InvalidInputError(`Call file field ${name} cannot contain a line break`);
  return value;
}

/** The text of a call file. `Archive: yes` makes Asterisk keep it in outgoing_done with a Status. */
export function formatCallFile(spec: CallFileSpec): string {
  if (!spec.application === !spec.dialplan) {
    throw new InvalidInputError('A call file needs either an application or a dialplan location');
  }
  const lines = [`Channel: ${field('Channel', spec.channel)}`];
  if (spec.callerId) lines.push(`CallerID: ${field('CallerID', spec.callerId)}`);
  lines.push(
    `WaitTime: ${Math.max(1, Math.round(spec.waitTime))}`,
    `MaxRetries: ${spec.maxRetries ?? 0}`,
    `RetryTime: ${spec.retryTime ?? 60}`,
  );
  if (spec.application) {
    lines.push(
      `Application: ${field('Application', spec.application.name)}`,
      `Data: ${field('Data', spec.application.data)}`,
    );
  } else if (spec.dialplan) {
    lines.push(
      `Context: ${field('Context', spec.dialplan.context)}`,
      `Extension: ${field('Extension', spec.dialplan.extension)}`,
      `Priority: ${spec.dialplan.priority}`,
    );
  }
  for (const [k, v] of Object.entries(spec.variables ?? {}))
    lines.push(`Setvar: ${field('Setvar', k)}=${field('Setvar', v)}`);
  lines.push('Archive: yes', '');
  return lines.join('\n');
}

/** Where call files are written and picked up. */
export interface SpoolDirectories {
  /** Asterisk's outgoing spool (`/var/spool/asterisk/outgoing`), as this process sees it. */
  outgoing: string;
  /**
   * Where the file is written before it is moved into `outgoing`: Asterisk may read a file that is
   * still being written, so it must appear there whole, with a rename on the same filesystem.
   * Default: a `.staging` folder beside `outgoing`.
   */
  staging?: string;
  /** Asterisk's `outgoing_done` (archived files with their Status). Default: beside `outgoing`. */
  done?: string;
}

/** Writes a call file and moves it into the spool. Returns its file name. */
export async function spoolCallFile(dirs: SpoolDirectories, spec: CallFileSpec): Promise<string> {
  const staging = dirs.staging ?? join(dirs.outgoing, '..', 'asteramisk-staging');
  await mkdir(staging, { recursive: true });
  const name = `asteramisk-${randomUUID()}.call`;
  const staged = join(staging, name);
  await writeFile(staged, formatCallFile(spec), { mode: 0o644 });
  try {
    await rename(staged, join(dirs.outgoing, name));
  } catch (error) {
    await rm(staged, { force: true });
    throw error;
  }
  return name;
}

/** Reads the Status Asterisk appended to an archived call file, if it has been archived. */
export async function archivedStatus(
  dirs: SpoolDirectories,
  name: string,
): Promise<CallFileStatus | undefined> {
  const done = dirs.done ?? join(dirs.outgoing, '..', 'outgoing_done');
  let text: string;
  try {
    text = await readFile(join(done, basename(name)), 'utf8');
  } catch {
    return undefined;
  }
  const status = /^Status:\s*(\w+)/m.exec(text)?.[1];
  return status === 'Completed' || status === 'Expired' || status === 'Failed' ? status : undefined;
}
