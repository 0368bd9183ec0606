/**
 * The AMI wire format as pure code: serialising actions (with strict header validation, so a CR or
 * LF in user data can never smuggle a second action onto the wire) and a streaming parser that
 * turns arbitrary TCP chunks back into messages. No sockets, no timers: both the client
 * (`ami-client.ts`) and the simulator's server (`src/sandbox/ami-server.ts`) build on it.
 */

import { StringDecoder } from 'node:string_decoder';
import { InvalidInputError } from '../errors.js';

/** One header line, `[key, value]`, as it appears on the wire. */
export type AmiEntry = readonly [key: string, value: string];

/** A value {@link serializeAction} accepts. An array becomes one header line per element. */
export type AmiFieldValue = string | number | boolean | readonly string[] | undefined;

/** The fields of an action, e.g. `{ Action: 'Originate', Channel: 'PJSIP/bob', Variable: ['A=1', 'B=2'] }`. */
export type AmiActionFields = Readonly<Record<string, AmiFieldValue>>;

/**
 * Header fields as ordered entries or as a record. The server and the event helpers accept both;
 * use entries when the order matters or a key repeats.
 */
export type AmiFields = ReadonlyArray<AmiEntry> | Readonly<Record<string, string>>;

/** The line Asterisk sends first on every AMI connection (AMI 11 = Asterisk 20–22). */
export const AMI_GREETING = 'Asterisk Call Manager/11.0.0';

/** Header keys whose values must never appear in a log or an error message. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['secret', 'key', 'password']);

/** True when `key` names a credential (`Secret`, `Key` of an MD5 login, `Password`), in any case. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase());
}

/**
 * A parsed AMI message: its header entries in wire order (repeated keys kept) and any lines that
 * were not `Key: Value` (legacy `Command` output). Lookups are case-insensitive, as Asterisk's are.
 */
export class AmiMessage {
  /** Header lines in wire order; a repeated key (`Output`, `Variable`, `Exten`) appears once per line. */
  readonly entries: ReadonlyArray<AmiEntry>;
  /** Lines without a `:` separator, in wire order (old-style `Command` output, garbage). */
  readonly rawLines: readonly string[];
  private index: Map<string, string[]> | undefined;

  constructor(entries: ReadonlyArray<AmiEntry>, rawLines: readonly string[] = []) {
    this.entries = entries;
    this.rawLines = rawLines;
  }

  /** The first value of `key` (case-insensitive), or `undefined`. */
  get(key: string): string | undefined {
    return this.lookup().get(key.toLowerCase())?.[0];
  }

  /** Every value of `key` (case-insensitive) in wire order; empty when absent. */
  getAll(key: string): string[] {
    return [...(this.lookup().get(key.toLowerCase()) ?? [])];
  }

  /** True when the message has at least one `key` header (case-insensitive). */
  has(key: string): boolean {
    return this.lookup().has(key.toLowerCase());
  }

  /**
   * The headers as a record: a key that occurs once maps to its value, a repeated key to an array
   * of values. Keys keep the spelling of their first occurrence.
   */
  toRecord(): Record<string, string | string[]> {
    const out: Record<string, string | string[]> = {};
    const spelling = new Map<string, string>();
    for (const [key, value] of this.entries) {
      const lower = key.toLowerCase();
      const name = spelling.get(lower);
      if (name === undefined) {
        spelling.set(lower, key);
        out[key] = value;
        continue;
      }
      // Push into our own array: copying it per repeat made a 50 000-line Command output take 25 s.
      const prev = out[name]!;
      if (Array.isArray(prev)) prev.push(value);
      else out[name] = [prev, value];
    }
    return out;
  }

  private lookup(): Map<string, string[]> {
    if (!this.index) {
      this.index = new Map();
      for (const [key, value] of this.entries) {
        const lower = key.toLowerCase();
        const list = this.index.get(lower);
        if (list) list.push(value);
        else this.index.set(lower, [value]);
      }
    }
    return this.index;
  }
}

/** The first value of `key` in `msg` (case-insensitive), or `undefined`. */
export function get(msg: AmiMessage, key: string): string | undefined {
  return msg.get(key);
}

/** Every value of `key` in `msg` (case-insensitive), in wire order. */
export function getAll(msg: AmiMessage, key: string): string[] {
  return msg.getAll(key);
}

/** Shows a header key in an error message without letting control characters through. */
function showKey(key: string): string {
  return JSON.stringify(key.length > 60 ? `${key.slice(0, 60)}…` : key);
}

function checkKey(key: string): void {
  if (key === '') throw new InvalidInputError('AMI header key is empty');
  if (/[\r\n]/.test(key)) throw new InvalidInputError(`AMI header key ${showKey(key)} contains CR or LF`);
  if (key.includes(':')) throw new InvalidInputError(`AMI header key ${showKey(key)} contains ":"`);
  if (key.includes('\0')) throw new InvalidInputError(`AMI header key ${showKey(key)} contains a NUL byte`);
  if (key.trim() !== key) {
    throw new InvalidInputError(`AMI header key ${showKey(key)} has leading or trailing whitespace`);
  }
}

// The value is never shown: it may be a Secret, or a message body the user did not mean to log.
function checkValue(key: string, value: string): void {
  if (/[\r\n]/.test(value)) {
    throw new InvalidInputError(
      `AMI header ${showKey(key)} has a value containing CR or LF; it would inject extra AMI lines. ` +
        'Remove line breaks (or encode them, e.g. Base64Body for MessageSend).',
    );
  }
  // Asterisk handles headers as C strings: a NUL silently truncates the value there.
  if (value.includes('\0'))
    throw new InvalidInputError(`AMI header ${showKey(key)} has a value containing NUL`);
}

function scalarToString(key: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new InvalidInputError(`AMI header ${showKey(key)} is not a finite number`);
    return String(value);
  }
  throw new InvalidInputError(`AMI header ${showKey(key)} must be a string, number, boolean or string[]`);
}

/**
 * Validates and flattens action fields to ordered entries. Nothing is produced unless every key
 * and value is acceptable, so a caller can never write half an action.
 *
 * @throws {InvalidInputError} naming the key (never the value) on CR, LF or NUL in a key or value,
 *   `:` in a key, or a value of the wrong type.
 */
export function actionEntries(fields: AmiActionFields): AmiEntry[] {
  const entries: AmiEntry[] = [];
  for (const [key, raw] of Object.entries(fields)) {
    checkKey(key);
    if (raw === undefined) continue;
    const values = Array.isArray(raw) ? (raw as readonly unknown[]) : [raw];
    for (const value of values) {
      const text = scalarToString(key, value);
      checkValue(key, text);
      entries.push([key, text]);
    }
  }
  return entries;
}

/**
 * Serialises ordered entries to one AMI message (`Key: Value\r\n` lines and a blank line).
 *
 * @throws {InvalidInputError} if any key or value could break the framing; nothing is returned then.
 */
export function serializeEntries(entries: ReadonlyArray<AmiEntry>): string {
  for (const [key, value] of entries) {
    checkKey(key);
    checkValue(key, value);
  }
  let out = '';
  for (const [key, value] of entries) out += `${key}: ${value}\r\n`;
  return `${out}\r\n`;
}

/**
 * Serialises an action. `undefined` values are left out, booleans become `true`/`false`, arrays
 * become repeated keys (`Variable: A=1`, `Variable: B=2`).
 *
 * @throws {InvalidInputError} naming the key (never the value) when a key or value contains CR or LF
 *   (or a key contains `:`): such input could run a second action. Nothing is produced then.
 */
export function serializeAction(fields: AmiActionFields): string {
  return serializeEntries(actionEntries(fields));
}

/** Normalises {@link AmiFields} (entries or record) to entries. */
export function toEntries(fields: AmiFields): AmiEntry[] {
  if (Array.isArray(fields)) return [...(fields as ReadonlyArray<AmiEntry>)];
  return Object.entries(fields as Readonly<Record<string, string>>);
}

/** Something the parser had to drop. Reported through {@link AmiParserOptions.onProblem}. */
export interface AmiParseProblem {
  kind: 'line-too-long' | 'message-too-long' | 'too-many-lines';
  /** UTF-16 units of the offending line or message seen so far (lines, for `too-many-lines`). */
  length: number;
}

/** Options of {@link AmiParser}. */
export interface AmiParserOptions {
  /**
   * The first line is the server greeting (`Asterisk Call Manager/11.0.0`), with no blank line
   * after it. Set on the client side. Default false.
   */
  expectGreeting?: boolean;
  /**
   * What ends a line. `crlf` (default, client side): only CR LF; a bare LF stays inside the line,
   * which keeps legacy `Command` output (LF-separated, ended by `--END COMMAND--`) together.
   * `lf` (server side): LF with or without a CR before it, as Asterisk itself reads requests.
   */
  lineEnding?: 'crlf' | 'lf';
  /** Longest accepted line; a longer one drops its whole message. Default 1 MiB. */
  maxLineLength?: number;
  /** Longest accepted message; a longer one is dropped. Default 16 MiB. */
  maxMessageLength?: number;
  /**
   * Most lines in one message; a message with more is dropped. Default 100 000 (a `dialplan show`
   * of a large PBX is a few thousand `Output:` lines). Bounds the per-line overhead, which for
   * 4-byte lines would otherwise reach ~140 MB within the 16 MiB message limit.
   */
  maxLinesPerMessage?: number;
  /** Called for each dropped line or message. Must not throw. */
  onProblem?: (problem: AmiParseProblem) => void;
}

/**
 * A streaming AMI parser. Feed it TCP chunks as they come (a message may span reads, a read may
 * hold several messages, a chunk may end between CR and LF or inside a UTF-8 sequence); it
 * returns the complete messages. It never throws on bad input: oversize data is dropped and
 * reported, invalid UTF-8 becomes U+FFFD, lines without `:` are kept in `rawLines`.
 *
 * Its work is linear in the input however it is cut (each character is scanned once, a partial
 * line is kept as a list of pieces), and what it holds is bounded by the line, message and
 * line-count limits, so a peer that never ends a line or a message cannot exhaust memory or CPU.
 */
export class AmiParser {
  /** The greeting line, once received (only with `expectGreeting`). */
  greeting: string | undefined;

  private readonly expectGreeting: boolean;
  private readonly crlf: boolean;
  private readonly maxLine: number;
  private readonly maxMessage: number;
  private readonly maxLines: number;
  private readonly onProblem: (problem: AmiParseProblem) => void;
  private decoder = new StringDecoder('utf8');
  /** The unfinished line, as the pieces received so far (joined once, when it ends). */
  private partial: string[] = [];
  private partialLength = 0;
  /** The last character received so far was a CR: a LF first in the next chunk ends a line. */
  private tailCR = false;
  private lines: string[] = [];
  private messageLength = 0;
  private skippingLine = false;
  private messageDamaged = false;

  constructor(options: AmiParserOptions = {}) {
    this.expectGreeting = options.expectGreeting ?? false;
    this.crlf = (options.lineEnding ?? 'crlf') === 'crlf';
    this.maxLine = options.maxLineLength ?? 1024 * 1024;
    this.maxMessage = options.maxMessageLength ?? 16 * 1024 * 1024;
    this.maxLines = options.maxLinesPerMessage ?? 100_000;
    this.onProblem = options.onProblem ?? (() => {});
  }

  /**
   * UTF-16 units held for messages not complete yet (the unfinished line and the lines of the
   * unfinished message). Never more than about `maxLineLength + maxMessageLength`.
   */
  get buffered(): number {
    return this.partialLength + this.messageLength;
  }

  /** Parses one chunk and returns the messages it completed (possibly none). */
  push(chunk: Buffer | string): AmiMessage[] {
    const text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk);
    const out: AmiMessage[] = [];
    if (text === '') return out;
    const sep = this.crlf ? '\r\n' : '\n';
    let start = 0;
    if (this.crlf && this.tailCR && text[0] === '\n') {
      // The CR LF that ends the line was cut between two reads.
      start = 1;
      const line = this.takePartial('');
      this.endLine(line.slice(0, -1), out);
    }
    for (;;) {
      const end = text.indexOf(sep, start);
      if (end < 0) break;
      const line = this.takePartial(text.slice(start, end));
      start = end + sep.length;
      this.endLine(!this.crlf && line.endsWith('\r') ? line.slice(0, -1) : line, out);
    }
    if (start < text.length) {
      const rest = text.slice(start);
      this.tailCR = rest.endsWith('\r');
      if (!this.skippingLine) {
        this.partial.push(rest);
        this.partialLength += rest.length;
        if (this.partialLength > this.maxLine) {
          this.onProblem({ kind: 'line-too-long', length: this.partialLength });
          this.partial = [];
          this.partialLength = 0;
          this.skippingLine = true;
          this.dropCurrentMessage();
        }
      }
    } else {
      this.tailCR = false;
    }
    return out;
  }

  /** Forgets all buffered state (after a reconnect, a new parser is cleaner, but this works too). */
  reset(): void {
    this.decoder = new StringDecoder('utf8');
    this.partial = [];
    this.partialLength = 0;
    this.tailCR = false;
    this.lines = [];
    this.messageLength = 0;
    this.skippingLine = false;
    this.messageDamaged = false;
    this.greeting = undefined;
  }

  /** The unfinished line with `last` appended; the buffer is emptied. */
  private takePartial(last: string): string {
    if (this.partial.length === 0) return last;
    this.partial.push(last);
    const line = this.partial.join('');
    this.partial = [];
    this.partialLength = 0;
    return line;
  }

  private endLine(line: string, out: AmiMessage[]): void {
    if (this.skippingLine) {
      // The tail of a line already reported as too long.
      this.skippingLine = false;
      return;
    }
    this.handleLine(line, out);
  }

  private dropCurrentMessage(): void {
    this.lines = [];
    this.messageLength = 0;
    this.messageDamaged = true;
  }

  private handleLine(line: string, out: AmiMessage[]): void {
    if (this.expectGreeting && this.greeting === undefined) {
      this.greeting = line;
      return;
    }
    if (line === '') {
      if (this.messageDamaged) {
        this.messageDamaged = false;
      } else if (this.lines.length > 0) {
        out.push(parseLines(this.lines, this.crlf));
      }
      this.lines = [];
      this.messageLength = 0;
      return;
    }
    if (this.messageDamaged) return;
    if (line.length > this.maxLine) {
      this.onProblem({ kind: 'line-too-long', length: line.length });
      this.dropCurrentMessage();
      return;
    }
    this.messageLength += line.length + 2;
    if (this.messageLength > this.maxMessage) {
      this.onProblem({ kind: 'message-too-long', length: this.messageLength });
      this.dropCurrentMessage();
      return;
    }
    if (this.lines.length >= this.maxLines) {
      this.onProblem({ kind: 'too-many-lines', length: this.lines.length + 1 });
      this.dropCurrentMessage();
      return;
    }
    this.lines.push(line);
  }
}

function parseLines(lines: readonly string[], crlf: boolean): AmiMessage {
  const entries: AmiEntry[] = [];
  const raw: string[] = [];
  for (const line of lines) {
    if (crlf && line.includes('\n')) {
      // Legacy Command output: LF-separated text that ends with `--END COMMAND--`. Its lines may
      // contain ": " and must not be mistaken for headers.
      const parts = line.split('\n').map((p) => (p.endsWith('\r') ? p.slice(0, -1) : p));
      raw.push(...parts);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) {
      raw.push(line);
      continue;
    }
    const key = line.slice(0, colon);
    let value = line.slice(colon + 1);
    // Exactly one space belongs to the separator; more is data (indented CLI output lines).
    if (value.startsWith(' ')) value = value.slice(1);
    entries.push([key, value]);
  }
  return new AmiMessage(entries, raw);
}

/** Parses one complete message from text (tests, tools). Missing final blank line is tolerated. */
export function parseMessage(text: string): AmiMessage {
  const body = text.replace(/(\r\n)+$/, '');
  return new AmiParser().push(`${body}\r\n\r\n`)[0] ?? new AmiMessage([]);
}

/**
 * The output lines of a `Command` response: the `Output:` headers of Asterisk 14+ or, for older
 * servers, the raw lines before `--END COMMAND--`. Every line is kept, blank ones and trailing
 * spaces included.
 */
export function commandOutput(msg: AmiMessage): string[] {
  const output = msg.getAll('Output');
  if (output.length > 0) return output;
  const lines = [...msg.rawLines];
  const end = lines.lastIndexOf('--END COMMAND--');
  if (end >= 0) lines.length = end;
  else {
    // Some versions glue the marker to the last output line without a line break.
    const last = lines.length - 1;
    if (last >= 0 && lines[last]!.endsWith('--END COMMAND--')) {
      const rest = lines[last]!.slice(0, -'--END COMMAND--'.length);
      if (rest === '') lines.pop();
      else lines[last] = rest;
    }
  }
  return lines;
}

/**
 * Entries safe to log: credential values (`Secret`, `Key`, `Password`) replaced by `[redacted]`.
 */
export function redactEntries(entries: ReadonlyArray<AmiEntry>): AmiEntry[] {
  return entries.map(([k, v]) => (isSecretKey(k) ? [k, '[redacted]'] : [k, v]));
}
