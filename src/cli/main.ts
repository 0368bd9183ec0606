#!/usr/bin/env node
/**
 * The `asteramisk` command (package.json `bin` points at its build, dist/cli/main.js; in the
 * repository run it with `npx tsx src/cli/main.ts …`). Each subcommand lives in its own module,
 * loaded only when used.
 */
import { Command } from 'commander';
import type { SttEngineName } from '../stt/create-stt-engine.js';
import type { TtsEngineName } from '../tts/create-tts-engine.js';

// `asteramisk … | head`: a closed pipe ends the output quietly, not with an EPIPE stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const program = new Command();
program
  .name('asteramisk')
  .description('Program Asterisk like Twilio: check an installation, write its configs, try calls and texts.')
  .showHelpAfterError();

program
  .command('demo')
  .description(
    'answer a simulated phone call with examples/hello.ts (built-in Asterisk 22 simulator; no PBX needed)',
  )
  .option('--console', 'instead: serve the web console with a browser softphone, until Ctrl-C')
  .option('--port <port>', 'port of the web console (with --console)', '8090')
  .option('--host <host>', 'address of the web console (with --console)', '127.0.0.1')
  .action(async (opts: { console?: boolean; port: string; host: string }) => {
    if (opts.console) {
      const { runConsoleDemo } = await import('./console-demo.js');
      await runConsoleDemo({ port: Number(opts.port), host: opts.host });
      return;
    }
    const { runDemo } = await import('./demo.js');
    await runDemo();
  });

program
  .command('console')
  .description(
    'run an app (a .js or .ts file that starts a Server) with the web console on, and print its address',
  )
  .argument('<app>', 'the app file, e.g. examples/ivr.ts')
  .option('--port <port>', 'port of the web console', '8090')
  .option('--host <host>', 'address of the web console', '127.0.0.1')
  .option(
    '--token <token>',
    'enables hang-up controls for requests carrying it (or ASTERAMISK_CONSOLE_TOKEN)',
  )
  .action(async (app: string, opts: { port: string; host: string; token?: string }) => {
    const { runWithConsole } = await import('./console-run.js');
    process.exitCode = await runWithConsole(app, opts);
  });

program
  .command('init-configs')
  .description('write the example Asterisk configs with generated secrets, backing up files it replaces')
  .option('--dir <dir>', 'Asterisk configuration folder', '/etc/asterisk')
  .action(async (opts: { dir: string }) => {
    const { initConfigs } = await import('./init-configs.js');
    await initConfigs({ dir: opts.dir });
  });

program
  .command('doctor')
  .description(
    'check ARI, AMI, modules, dialplan contexts, endpoints and an RTP round trip; exit 1 on a failure',
  )
  .option('--timeout <ms>', 'time limit of each network step', '5000')
  .option(
    '--tts <engine>',
    'TTS engine to check (openai, google, espeak, offline, none); default: what a Server would use',
  )
  .option(
    '--stt <engine>',
    'STT engine to check (openai, pocketsphinx, none); default: what a Server would use',
  )
  .action(async (opts: { timeout: string; tts?: string; stt?: string }) => {
    const { runDoctor } = await import('./doctor.js');
    process.exitCode = await runDoctor({
      timeoutMs: Number(opts.timeout),
      speech: {
        ...(opts.tts ? { tts: opts.tts as TtsEngineName | 'none' } : {}),
        ...(opts.stt ? { stt: opts.stt as SttEngineName | 'none' } : {}),
      },
    });
  });

program
  .command('call')
  .description(
    'call NUMBER (a PJSIP endpoint, or a number through ASTERISK_PSTN_ENDPOINT), say a line, hang up',
  )
  .argument('<number>', 'who to call')
  .option('--say <text>', 'what to say', 'Hello from asteramisk. This is a test call. Goodbye.')
  .option(
    '--tts <engine>',
    'text-to-speech engine: openai, google, espeak or offline (default: from the environment)',
  )
  .option('--verbose', "print the library's log lines too")
  .action(async (number: string, opts: { say: string; tts?: TtsEngineName; verbose?: boolean }) => {
    const { callCommand } = await import('./call-text.js');
    process.exitCode = await callCommand(number, opts.say, {
      ...(opts.tts ? { tts: opts.tts } : {}),
      verbose: opts.verbose === true,
    });
  });

program
  .command('text')
  .description('send a SIP MESSAGE with BODY to NUMBER')
  .argument('<number>', 'who to text')
  .argument('<body>', 'the message')
  .option('--from <number>', 'our number the text comes from (default SYSTEM_PHONE_NUMBER, else asteramisk)')
  .option('--verbose', "print the library's log lines too")
  .action(async (number: string, body: string, opts: { from?: string; verbose?: boolean }) => {
    const { textCommand } = await import('./call-text.js');
    process.exitCode = await textCommand(number, body, {
      ...(opts.from ? { from: opts.from } : {}),
      verbose: opts.verbose === true,
    });
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  console.error(`asteramisk: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
