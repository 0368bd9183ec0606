import { Communicator } from '../communicator.js';
import { ConfigError } from '../errors.js';
import { createDefaultLogger, silentLogger } from '../logger.js';
import type { TtsEngineName } from '../tts/create-tts-engine.js';

export interface QuickTestOptions {
  /** TTS engine of `call`; default the library's choice from the environment. */
  tts?: TtsEngineName;
  /** Log the library's own lines (pino) too. */
  verbose?: boolean;
  print?: (line: string) => void;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/**
 * `asteramisk call NUMBER`: calls, says `line` once answered (or plays `sound:hello-world` when no
 * TTS engine is configured), hangs up. Resolves with the exit code.
 */
export async function callCommand(
  number: string,
  line: string,
  options: QuickTestOptions = {},
): Promise<number> {
  const print = options.print ?? ((l: string) => console.log(l));
  const c = await Communicator.create({
    logger: options.verbose ? createDefaultLogger() : silentLogger,
    ...(options.tts ? { tts: options.tts } : {}),
    stt: false,
  });
  try {
    print(`calling ${number}…`);
    const call = await c.makeCall(number);
    print(`${number} answered`);
    try {
      await call.say(line);
      print(`said: ${line}`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      print(`no text-to-speech engine (${err.message}); playing sound:hello-world instead`);
      await call.play('sound:hello-world');
    }
    await call.hangup();
    print('hung up');
    return 0;
  } catch (err) {
    print(`call failed: ${describe(err)}`);
    return 1;
  } finally {
    await c.close();
  }
}

/** `asteramisk text NUMBER BODY`: sends one SIP MESSAGE. Resolves with the exit code. */
export async function textCommand(
  number: string,
  body: string,
  options: QuickTestOptions & { from?: string } = {},
): Promise<number> {
  const print = options.print ?? ((l: string) => console.log(l));
  const c = await Communicator.create({
    logger: options.verbose ? createDefaultLogger() : silentLogger,
    tts: false,
    stt: false,
  });
  try {
    const text = await c.makeText(number, {
      from: options.from ?? process.env.SYSTEM_PHONE_NUMBER ?? 'asteramisk',
    });
    await text.say(body);
    print(`sent to ${number}: ${body}`);
    return 0;
  } catch (err) {
    print(`text failed: ${describe(err)}`);
    return 1;
  } finally {
    await c.close();
  }
}
