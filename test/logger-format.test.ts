import { Writable } from 'node:stream';
import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import { chooseLogFormat, createDefaultLogger, type Logger } from '../src/logger.js';

/** A stream that keeps what is written, and claims to be a terminal or not. */
function sink(isTTY: boolean): Writable & { isTTY: boolean; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  }) as Writable & { isTTY: boolean; text: () => string };
  stream.isTTY = isTTY;
  stream.text = () => chunks.join('');
  return stream;
}

/** pino-pretty transforms in a stream: its line arrives after a few ticks. */
async function written(stream: { text: () => string }): Promise<string> {
  for (let i = 0; i < 50 && stream.text() === ''; i++) await new Promise((r) => setTimeout(r, 5));
  return stream.text();
}

function logLine(logger: Logger): void {
  const call = logger.child?.({ call: '1733.42', from: '1001', to: '2000' }) ?? logger;
  call.info({ verb: 'say', ms: 1234, password: 'hunter2', config: { ariPassword: 's3cret' } }, 'verb done');
}

describe('default logger format', () => {
  it('chooses pretty on a TTY, JSON otherwise, and obeys ASTERAMISK_LOG_FORMAT', () => {
    expect(chooseLogFormat(true, {})).toBe('pretty');
    expect(chooseLogFormat(false, {})).toBe('json');
    expect(chooseLogFormat(undefined, {})).toBe('json');
    expect(chooseLogFormat(true, { ASTERAMISK_LOG_FORMAT: 'json' })).toBe('json');
    expect(chooseLogFormat(false, { ASTERAMISK_LOG_FORMAT: 'pretty' })).toBe('pretty');
    expect(chooseLogFormat(false, { ASTERAMISK_LOG_FORMAT: 'nonsense' })).toBe('json');
  });

  it('writes JSON lines to a non-TTY stream, with secrets redacted', async () => {
    const stream = sink(false);
    logLine(createDefaultLogger({ stream, env: { ASTERAMISK_LOG_LEVEL: 'info' } }));
    const line = JSON.parse((await written(stream)).trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 30, call: '1733.42', verb: 'say', ms: 1234, msg: 'verb done' });
    expect(line.password).toBe('[redacted]');
    expect(line.config).toEqual({ ariPassword: '[redacted]' });
    expect(stream.text()).not.toMatch(/hunter2|s3cret/);
  });

  it('writes coloured human-readable lines to a TTY, with secrets redacted', async () => {
    const stream = sink(true);
    logLine(createDefaultLogger({ stream, env: { ASTERAMISK_LOG_LEVEL: 'info' } }));
    const text = await written(stream);
    expect(text).not.toMatch(/^\{/);
    expect(text).toContain('\u001b['); // ANSI colours
    const plain = stripVTControlCharacters(text);
    expect(plain).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: \[1733\.42\] 1001→2000 verb done /);
    expect(plain).toContain('"verb":"say"');
    expect(plain).toContain('"ms":1234');
    expect(plain).toContain('[redacted]');
    expect(text).not.toMatch(/hunter2|s3cret/);
  });

  it('ASTERAMISK_LOG_FORMAT=json on a TTY writes JSON; pretty on a pipe writes lines without colour', async () => {
    const tty = sink(true);
    logLine(
      createDefaultLogger({
        stream: tty,
        env: { ASTERAMISK_LOG_LEVEL: 'info', ASTERAMISK_LOG_FORMAT: 'json' },
      }),
    );
    expect(JSON.parse((await written(tty)).trim())).toMatchObject({
      msg: 'verb done',
      password: '[redacted]',
    });
    const pipe = sink(false);
    logLine(
      createDefaultLogger({
        stream: pipe,
        env: { ASTERAMISK_LOG_LEVEL: 'info', ASTERAMISK_LOG_FORMAT: 'pretty' },
      }),
    );
    const text = await written(pipe);
    expect(text).toMatch(/INFO: \[1733\.42\] 1001→2000 verb done/);
    expect(text).not.toContain('\u001b[');
  });

  it('takes the level from ASTERAMISK_LOG_LEVEL', async () => {
    const stream = sink(false);
    const logger = createDefaultLogger({ stream, env: { ASTERAMISK_LOG_LEVEL: 'warn' } });
    logger.info({}, 'not shown');
    logger.debug({}, 'not shown either');
    logger.warn({ n: 1 }, 'shown');
    const lines = (await written(stream)).trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ level: 40, msg: 'shown' });

    const debug = sink(false);
    createDefaultLogger({ stream: debug, env: { ASTERAMISK_LOG_LEVEL: 'debug' } }).debug({}, 'shown');
    expect(JSON.parse((await written(debug)).trim())).toMatchObject({ level: 20 });

    const quiet = sink(false);
    createDefaultLogger({ stream: quiet, env: { VITEST: 'true' } }).error({}, 'silent under vitest');
    await new Promise((r) => setTimeout(r, 20));
    expect(quiet.text()).toBe('');
  });
});
