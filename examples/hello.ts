/**
 * The smallest useful phone app: answer, greet, ask for digits, offer a menu.
 *
 * Against a real Asterisk (see example-configs/): set ASTERISK_* variables and run
 *   npx tsx examples/hello.ts
 * `npm run demo` runs it against the built-in simulator with a scripted caller.
 */
import type { VoiceUI } from '../src/index.js';

/** The call handler: what the caller of extension 1000 experiences. */
export async function hello(ui: VoiceUI): Promise<void> {
  await ui.answer();
  await ui.say(`Hello ${ui.remoteName || 'there'}, welcome to asteramisk.`);
  const code = await ui.gather('Please enter your four digit code, then press pound.', { numDigits: 4 });
  await ui.say(code ? `You entered ${code.split('').join(' ')}.` : 'You did not enter a code.');
  const department = await ui.menu('For sales, press 1. For support, press 2.', {
    '1': () => 'sales',
    '2': () => 'support',
  });
  await ui.say(`Connecting you to ${department}. Goodbye!`);
}

// Run directly: serve extension 1000 on the Asterisk the environment points at.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { Server } = await import('../src/index.js');
  const server = await Server.create();
  await server.registerExtension('1000', { voice: hello });
  console.log('Serving extension 1000. Call it; Ctrl-C to stop.');
  await server.serveForever();
}
