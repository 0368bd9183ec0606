import type { VoiceUI } from '../ui/voice-ui.js';

/**
 * The smallest useful phone app: answer, greet, ask for digits, offer a menu. examples/hello.ts
 * serves it on a real Asterisk; `asteramisk demo` (and `npm run demo`) plays it to a scripted
 * caller on the simulator. It lives in src/ so the published CLI has it.
 */
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
