import { describe, expect, it } from 'vitest';
import {
  AmiMessage,
  type AmiParseProblem,
  AmiParser,
  commandOutput,
  get,
  getAll,
  parseMessage,
  redactEntries,
  serializeAction,
} from '../src/asterisk/ami-codec.js';
import { InvalidInputError } from '../src/errors.js';

/** Messages shaped like Asterisk 22's (values made up for these tests). */
const GREETING = 'Asterisk Call Manager/11.0.0\r\n';
const LOGIN_OK = 'Response: Success\r\nActionID: t-1\r\nMessage: Authentication accepted\r\n\r\n';
const BOOTED =
  'Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: 12\r\nLastReload: 12\r\nStatus: Fully Booted\r\n\r\n';
const USER_EVENT =
  'Event: UserEvent\r\nPrivilege: user,all\r\nTimestamp: 1700000000.000123\r\n' +
  'Channel: Message/ast_msg_queue\r\nContext: texts\r\nExten: 4242\r\nPriority: 2\r\n' +
  'UserEvent: InboundText\r\nFrom: Carol <sip:carol@127.0.0.1>\r\nTo: pjsip:4242@127.0.0.1\r\n' +
  'Exten: 4242-custom\r\nBody: hi: there\r\n\r\n';
const COMMAND_OUT =
  'Response: Success\r\nActionID: t-2\r\nMessage: Command output follows\r\n' +
  'Output: Name          State   \r\n' +
  'Output: \r\n' +
  'Output:    indented line\r\n' +
  'Output:  \r\n' +
  'Output: key: value looking line\r\n' +
  'Output: 2 things\r\n\r\n';
const STREAM = GREETING + LOGIN_OK + BOOTED + USER_EVENT + COMMAND_OUT;

function feedAll(chunks: (string | Buffer)[]): { parser: AmiParser; messages: AmiMessage[] } {
  const parser = new AmiParser({ expectGreeting: true });
  const messages: AmiMessage[] = [];
  for (const chunk of chunks) messages.push(...parser.push(chunk));
  return { parser, messages };
}

function summary(messages: AmiMessage[]): unknown {
  return messages.map((m) => ({ entries: m.entries, raw: m.rawLines }));
}

describe('serializeAction', () => {
  it('writes Key: Value lines in order and a blank line', () => {
    expect(serializeAction({ Action: 'Ping', ActionID: 'x-1' })).toBe(
      'Action: Ping\r\nActionID: x-1\r\n\r\n',
    );
  });

  it('repeats keys for arrays, stringifies numbers and booleans, skips undefined', () => {
    const text = serializeAction({
      Action: 'Originate',
      Channel: 'PJSIP/bob',
      Timeout: 15000,
      Async: true,
      Account: undefined,
      Variable: ['A=1', 'B=two words'],
    });
    expect(text).toBe(
      'Action: Originate\r\nChannel: PJSIP/bob\r\nTimeout: 15000\r\nAsync: true\r\nVariable: A=1\r\nVariable: B=two words\r\n\r\n',
    );
  });

  it.each([
    ['CR LF in a value', { Action: 'Ping', Foo: 'a\r\nAction: Originate' }, 'Foo'],
    ['bare LF in a value', { Action: 'Ping', Foo: 'a\nAction: Originate' }, 'Foo'],
    ['bare CR in a value', { Action: 'Ping', Foo: 'a\rb' }, 'Foo'],
    ['LF in an array element', { Action: 'Originate', Variable: ['A=1', 'B=2\nAction: Logoff'] }, 'Variable'],
    ['LF in a key', { Action: 'Ping', 'Foo\nAction': 'x' }, 'Foo\\nAction'],
    ['CR in a key', { Action: 'Ping', 'Foo\r': 'x' }, 'Foo\\r'],
    ['a colon in a key', { Action: 'Ping', 'Foo: bar': 'x' }, 'Foo: bar'],
    ['an empty key', { Action: 'Ping', '': 'x' }, 'empty'],
    ['NUL in a value', { Action: 'Ping', Foo: 'a\0b' }, 'Foo'],
  ])('rejects %s with InvalidInputError naming the key', (_name, fields, key) => {
    let error: unknown;
    try {
      serializeAction(fields);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidInputError);
    expect((error as Error).message).toContain(key);
  });

  it('never shows a value (e.g. a Secret) in the error', () => {
    const secret = 'pa55-very-secret\r\nAction: Originate';
    let message = '';
    try {
      serializeAction({ Action: 'Login', Username: 'admin', Secret: secret });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('Secret');
    expect(message).not.toContain('pa55');
    expect(message).not.toContain('Originate');
  });

  it('rejects non-finite numbers and wrong types', () => {
    expect(() => serializeAction({ Action: 'Ping', N: Number.NaN })).toThrow(InvalidInputError);
    expect(() => serializeAction({ Action: 'Ping', N: { a: 1 } as unknown as string })).toThrow(
      InvalidInputError,
    );
  });

  it('round-trips through the parser', () => {
    const fields = { Action: 'Setvar', Variable: ['X=1', 'Y=2'], Value: ' leading space', Empty: '' };
    const msg = parseMessage(serializeAction(fields));
    expect(msg.entries).toEqual([
      ['Action', 'Setvar'],
      ['Variable', 'X=1'],
      ['Variable', 'Y=2'],
      ['Value', ' leading space'],
      ['Empty', ''],
    ]);
  });

  it('redacts credentials for logs', () => {
    expect(
      redactEntries([
        ['Action', 'Login'],
        ['Secret', 's'],
        ['key', 'k'],
      ]),
    ).toEqual([
      ['Action', 'Login'],
      ['Secret', '[redacted]'],
      ['key', '[redacted]'],
    ]);
  });
});

describe('AmiParser', () => {
  const whole = feedAll([STREAM]);

  it('reads the greeting without a blank line after it, then the messages', () => {
    expect(whole.parser.greeting).toBe('Asterisk Call Manager/11.0.0');
    expect(whole.messages.map((m) => m.get('Event') ?? m.get('Response'))).toEqual([
      'Success',
      'FullyBooted',
      'UserEvent',
      'Success',
    ]);
  });

  it('gives the same messages for every two-chunk split of the stream', () => {
    const expected = summary(whole.messages);
    for (let i = 1; i < STREAM.length; i++) {
      const { parser, messages } = feedAll([STREAM.slice(0, i), STREAM.slice(i)]);
      expect(parser.greeting, `split at ${i}`).toBe('Asterisk Call Manager/11.0.0');
      expect(summary(messages), `split at ${i}`).toEqual(expected);
    }
  });

  it('gives the same messages when fed one byte at a time', () => {
    const bytes = Buffer.from(STREAM);
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    expect(summary(feedAll(chunks).messages)).toEqual(summary(whole.messages));
  });

  it('decodes a UTF-8 character split across reads', () => {
    const bytes = Buffer.from(`${GREETING}Event: UserEvent\r\nBody: héllo ☎\r\n\r\n`);
    const at = bytes.indexOf(0xe2) + 1; // inside the 3-byte ☎
    const { messages } = feedAll([bytes.subarray(0, at), bytes.subarray(at)]);
    expect(messages[0]!.get('Body')).toBe('héllo ☎');
  });

  it('keeps repeated keys: Exten twice in a dialplan UserEvent', () => {
    const ev = whole.messages[2]!;
    expect(getAll(ev, 'Exten')).toEqual(['4242', '4242-custom']);
    expect(get(ev, 'exten')).toBe('4242');
    expect(ev.toRecord().Exten).toEqual(['4242', '4242-custom']);
    // Only the first `: ` separates; the rest is the value.
    expect(ev.get('Body')).toBe('hi: there');
  });

  it('keeps every Output line of a Command, blank ones and spaces included', () => {
    const res = whole.messages[3]!;
    expect(commandOutput(res)).toEqual([
      'Name          State   ',
      '',
      '   indented line',
      ' ',
      'key: value looking line',
      '2 things',
    ]);
  });

  it('looks keys up case-insensitively', () => {
    const msg = parseMessage('response: Success\r\nactionid: a\r\nPING: Pong');
    expect(msg.get('Response')).toBe('Success');
    expect(msg.get('ActionID')).toBe('a');
    expect(msg.has('ping')).toBe(true);
    expect(msg.getAll('missing')).toEqual([]);
  });

  it('parses the legacy Command format (raw LF-separated output before --END COMMAND--)', () => {
    const legacy =
      'Response: Follows\r\nPrivilege: Command\r\nActionID: t-3\r\n' +
      'Asterisk 13.38.3 built by someone\nUptime: 3 hours\n\n  indented\n--END COMMAND--\r\n\r\n';
    const { messages } = feedAll([GREETING, legacy]);
    const msg = messages[0]!;
    expect(msg.get('Response')).toBe('Follows');
    // "Uptime: 3 hours" is output, not a header.
    expect(msg.has('Uptime')).toBe(false);
    expect(commandOutput(msg)).toEqual([
      'Asterisk 13.38.3 built by someone',
      'Uptime: 3 hours',
      '',
      '  indented',
    ]);
  });

  it('keeps lines without a colon instead of failing', () => {
    const msg = parseMessage('Response: Success\r\njust some text\r\n: starts with colon');
    expect(msg.get('Response')).toBe('Success');
    expect(msg.rawLines).toEqual(['just some text', ': starts with colon']);
  });

  it('ignores stray blank lines between messages', () => {
    const { messages } = feedAll([`${GREETING}\r\n\r\nEvent: A\r\n\r\n\r\nEvent: B\r\n\r\n`]);
    expect(messages.map((m) => m.get('Event'))).toEqual(['A', 'B']);
  });

  it('drops an over-long line with its message, reports it, and carries on', () => {
    const problems: AmiParseProblem[] = [];
    const parser = new AmiParser({ maxLineLength: 100, onProblem: (p) => problems.push(p) });
    const out: AmiMessage[] = [];
    out.push(...parser.push('Event: Big\r\nData: '));
    for (let i = 0; i < 50; i++) out.push(...parser.push('x'.repeat(20)));
    out.push(...parser.push('\r\nMore: 1\r\n\r\nEvent: Small\r\n\r\n'));
    expect(problems.map((p) => p.kind)).toEqual(['line-too-long']);
    expect(out.map((m) => m.get('Event'))).toEqual(['Small']);
  });

  it('drops an over-long message', () => {
    const problems: AmiParseProblem[] = [];
    const parser = new AmiParser({ maxMessageLength: 200, onProblem: (p) => problems.push(p) });
    const big = `Event: Big\r\n${'Line: 0123456789\r\n'.repeat(50)}\r\n`;
    const out = parser.push(`${big}Event: Next\r\n\r\n`);
    expect(problems).toHaveLength(1);
    expect(out.map((m) => m.get('Event'))).toEqual(['Next']);
  });

  it('in lf mode (server side) accepts LF and CRLF line ends', () => {
    const parser = new AmiParser({ lineEnding: 'lf' });
    const out = parser.push('Action: Ping\nActionID: 1\n\nAction: Ping\r\nActionID: 2\r\n\r\n');
    expect(out.map((m) => m.get('ActionID'))).toEqual(['1', '2']);
  });

  it('never throws on random bytes', () => {
    let seed = 42;
    const rand = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (const mode of ['crlf', 'lf'] as const) {
      const parser = new AmiParser({ expectGreeting: true, lineEnding: mode, maxLineLength: 300 });
      for (let i = 0; i < 2000; i++) {
        const len = rand() % 40;
        const chunk = Buffer.alloc(len);
        // Bias towards the bytes that matter: CR, LF, ':' and space.
        for (let j = 0; j < len; j++) chunk[j] = [13, 10, 58, 32, rand() % 256][rand() % 5]!;
        expect(() => parser.push(chunk)).not.toThrow();
      }
    }
  });

  it('AmiMessage.toRecord keeps the first spelling of a key', () => {
    const msg = new AmiMessage([
      ['Variable', 'a'],
      ['variable', 'b'],
      ['Other', 'c'],
    ]);
    expect(msg.toRecord()).toEqual({ Variable: ['a', 'b'], Other: 'c' });
  });
});
