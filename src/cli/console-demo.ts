/**
 * `asteramisk demo --console`: the sandbox with the web console and its browser softphone. The
 * built-in Asterisk 22 simulator, a Server serving extension 1000 (the hello handler for calls, a
 * small text flow for texts), and the console at http://127.0.0.1:8090/ where the browser is
 * phone `alice`: dial 1000, press keys, hear the prompts, text it. No PBX, no SIP client.
 */
import { createDefaultLogger } from '../logger.js';
import { simulatorSoftphone } from '../sandbox/sim-softphone.js';
import { Simulator } from '../sandbox/simulator.js';
import { Server } from '../server.js';
import { detectEspeak, EspeakTtsEngine } from '../tts/espeak-tts-engine.js';
import { OfflineTtsEngine } from '../tts/offline-tts-engine.js';
import type { TextUI } from '../ui/text-ui.js';
import { hello } from './hello.js';

/** Options of {@link startConsoleDemo}. */
export interface ConsoleDemoOptions {
  port?: number;
  host?: string;
}

/** A running console demo. */
export interface ConsoleDemo {
  url: string;
  sim: Simulator;
  server: Server;
  close(): Promise<void>;
}

/** What extension 1000 answers to texts: asks a name and a yes/no question. */
export async function helloText(ui: TextUI): Promise<void> {
  const name = await ui.prompt(`Hi! You wrote "${ui.firstMessage}". What is your name?`);
  if (!name) return;
  const likes = await ui.askYesNo(`Nice to meet you, ${name}. Do you like phones?`);
  await ui.say(likes ? 'Me too. Bye!' : 'Fair enough. Bye!');
}

/** Starts the simulator, the Server on 1000 and the console with the softphone. */
export async function startConsoleDemo(options: ConsoleDemoOptions = {}): Promise<ConsoleDemo> {
  const sim = await Simulator.start();
  try {
    // Real words when espeak-ng is installed; otherwise the offline engine's tones.
    const espeak = await detectEspeak();
    const tts = espeak ? new EspeakTtsEngine({ command: espeak.command }) : new OfflineTtsEngine();
    const server = await Server.create({
      ...sim.connectionOptions(),
      appName: 'console-demo',
      tts,
      stt: false,
      ttsCacheDirectory: false,
      logger: createDefaultLogger({ level: process.env.ASTERAMISK_LOG_LEVEL ?? 'warn' }),
      console: {
        port: options.port ?? 8090,
        ...(options.host ? { host: options.host } : {}),
        softphone: simulatorSoftphone(sim),
      },
    });
    await server.registerExtension('1000', { voice: hello, text: helloText });
    return {
      url: server.consoleUrl ?? '',
      sim,
      server,
      async close() {
        await server.close();
        await sim.close();
      },
    };
  } catch (error) {
    await sim.close();
    throw error;
  }
}

/** Runs the console demo until Ctrl-C. */
export async function runConsoleDemo(options: ConsoleDemoOptions = {}): Promise<void> {
  const demo = await startConsoleDemo(options);
  console.log(`asteramisk console: ${demo.url}`);
  console.log('Open it in a browser: you are phone "alice". Call 1000 (press keys when asked), or text it.');
  console.log('Ctrl-C to stop.');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await demo.close();
}
