/**
 * A text bot on extension 1000: answers SIP MESSAGEs with a small order flow.
 *
 *   npx tsx examples/text-bot.ts      # against the Asterisk in ASTERISK_* (see example-configs/)
 *
 * Send a SIP MESSAGE from a phone (e.g. alice) to 1000 to start a conversation.
 */
import type { TextUI } from '../src/index.js';

export const TEXT_BOT_NUMBER = '1000';

export async function textBot(ui: TextUI): Promise<void> {
  await ui.say(
    `Hi ${ui.remoteName || ui.remoteNumber}! I take pizza orders. Reply "back" inside a step to go back.`,
  );
  const size = await ui.choose('What size?', ['small', 'medium', 'large']);
  const count = await ui.gather('How many? Reply with one digit.', { numDigits: 1 });
  if (!count) {
    await ui.say('No answer, no pizza. Bye!');
    return;
  }
  const confirmed = await ui.askYesNo(`${count} ${size} pizza${count === '1' ? '' : 's'}, right?`);
  await ui.say(
    confirmed ? 'Ordered! 🍕 It will be there in 30 minutes.' : 'Cancelled. Text me again any time.',
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { Server } = await import('../src/index.js');
  const server = await Server.create();
  await server.registerExtension(TEXT_BOT_NUMBER, { text: textBot });
  console.log(`Texting bot on ${TEXT_BOT_NUMBER}. Ctrl-C to stop.`);
  await server.serveForever();
}
