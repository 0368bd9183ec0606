/**
 * A small IVR: main menu with a nested menu (press * to go back), an account lookup by digits, a
 * voicemail recording, and a transfer to the operator.
 *
 *   npx tsx examples/ivr.ts            # against the Asterisk in ASTERISK_* (see example-configs/)
 *
 * Extension 2000 runs it. The operator transfer goes to extension `operator` of the call context.
 */
import type { VoiceUI } from '../src/index.js';

export const IVR_NUMBER = '2000';

/** Where "talk to an operator" sends the caller. */
export const OPERATOR = { context: 'asteramisk-operator', extension: 'operator' };

export async function ivr(ui: VoiceUI): Promise<void> {
  await ui.answer();
  await ui.say('Thank you for calling Example Company.');
  for (;;) {
    const done = await ui.menu(
      'For account balance, press 1. To leave a message, press 2. For opening hours, press 3. For an operator, press 0.',
      {
        '1': () => balance(ui),
        '2': () => voicemail(ui),
        '3': () => hours(ui),
        '0': async () => {
          await ui.say('Transferring you to an operator.');
          await ui.transfer(OPERATOR);
          return true;
        },
      },
    );
    if (done) return;
  }
}

/** Reads an account number and says a (fake) balance. Returns true when the call should end. */
async function balance(ui: VoiceUI): Promise<boolean> {
  const account = await ui.gather('Enter your account number, then press pound. Press star to go back.', {
    timeout: 6,
    validDigits: '0123456789',
  });
  if (!account) {
    await ui.say('No account number received.');
    return false;
  }
  const cents = [...account].reduce((sum, d) => sum * 7 + Number(d), 11) % 100000;
  await ui.say(
    `The balance of account ${account.split('').join(' ')} is ${Math.floor(cents / 100)} dollars and ${cents % 100} cents.`,
  );
  return false;
}

/** Records a message after the beep. */
async function voicemail(ui: VoiceUI): Promise<boolean> {
  await ui.say('Please leave your message after the beep. Press any key when you are done.');
  const message = await ui.record({ maxLength: 120, timeout: 5 });
  await ui.say(`Thank you. Your message of ${message.durationSeconds} seconds was saved. Goodbye.`);
  return true;
}

/** A nested menu: * goes back to the main menu. */
async function hours(ui: VoiceUI): Promise<boolean> {
  return ui.menu('For weekday hours, press 1. For weekend hours, press 2. Press star to go back.', {
    '1': async () => {
      await ui.say('We are open nine to five, Monday to Friday.');
      return false;
    },
    '2': async () => {
      await ui.say('We are closed on weekends.');
      return false;
    },
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { Server } = await import('../src/index.js');
  const server = await Server.create();
  await server.registerExtension(IVR_NUMBER, { voice: ivr });
  console.log(`Serving the IVR on extension ${IVR_NUMBER}. Ctrl-C to stop.`);
  await server.serveForever();
}
