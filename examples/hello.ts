/**
 * The smallest useful phone app: answer, greet, ask for digits, offer a menu. The handler itself
 * is src/cli/hello.ts (so that the published `asteramisk demo` command plays it too):
 *
 *   await ui.answer();
 *   await ui.say(`Hello ${ui.remoteName || 'there'}, welcome to asteramisk.`);
 *   const code = await ui.gather('Please enter your four digit code, then press pound.', { numDigits: 4 });
 *   …
 *   const department = await ui.menu('For sales, press 1. For support, press 2.', { '1': …, '2': … });
 *
 * Against a real Asterisk (see example-configs/): set ASTERISK_* variables and run
 *   npx tsx examples/hello.ts
 * `npm run demo` (`asteramisk demo`) runs it against the built-in simulator with a scripted caller.
 */
import { hello } from '../src/cli/hello.js';

export { hello };

// Run directly: serve extension 1000 on the Asterisk the environment points at.
if (import.meta.url === `file://${process.argv[1]}`) {
  const { Server } = await import('../src/index.js');
  const server = await Server.create();
  await server.registerExtension('1000', { voice: hello });
  console.log('Serving extension 1000. Call it; Ctrl-C to stop.');
  await server.serveForever();
}
