/**
 * Outbound contact: calls a number, reads a message and asks for a confirmation; if the call
 * fails (busy, no answer…), sends a text instead.
 *
 *   npx tsx examples/outbound-call.ts 1001    # against the Asterisk in ASTERISK_* (see example-configs/)
 *
 * Needs SYSTEM_PHONE_NUMBER (caller ID and the number texts come from).
 */
import { CallFailedError, type Communicator } from '../src/index.js';

export interface Reminder {
  to: string;
  message: string;
}

/** Returns how the reminder reached the person: confirmed on a call, told on a call, or texted. */
export async function remind(c: Communicator, reminder: Reminder): Promise<'confirmed' | 'told' | 'texted'> {
  try {
    const call = await c.makeCall(reminder.to, { timeout: 20 });
    try {
      await call.say(reminder.message);
      const ok = await call.askYesNo('Will you be there?', { maxAttempts: 2 });
      await call.say(ok ? 'Great, see you then.' : 'Thanks, we will call you to reschedule.');
      return ok ? 'confirmed' : 'told';
    } finally {
      await call.hangup();
    }
  } catch (error) {
    if (!(error instanceof CallFailedError)) throw error;
    const text = await c.makeText(reminder.to);
    await text.say(`${reminder.message} (We tried to call: ${error.reason}.)`);
    await text.hangup();
    return 'texted';
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { Communicator } = await import('../src/index.js');
  const to = process.argv[2];
  if (!to) throw new Error('usage: npx tsx examples/outbound-call.ts <number>');
  const c = await Communicator.create();
  const outcome = await remind(c, { to, message: 'This is a reminder of your appointment tomorrow at 10.' });
  console.log(`reminder to ${to}: ${outcome}`);
  await c.close();
}
