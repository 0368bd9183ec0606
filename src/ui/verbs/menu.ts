import { GoBackError, InputTimeoutError, InvalidInputError } from '../../errors.js';
import { type ChoiceOptions, type Conversation, joinPrompt, type MenuAction } from '../conversation.js';

const NO_INPUT = "I didn't receive a selection. Please try again.";
const INVALID = "That wasn't one of the choices. Please try again.";

/**
 * Asks until the caller picks a key of `options`, then returns the key. Empty input repeats the
 * prompt with a notice and counts toward `maxAttempts` (then InputTimeoutError); a wrong key
 * repeats with another notice.
 */
export async function readValidChoice(
  conversation: Conversation,
  prompt: string,
  keys: readonly string[],
  options: ChoiceOptions & { normalize?: (reply: string) => string } = {},
): Promise<string> {
  if (keys.length === 0) throw new InvalidInputError('A menu needs at least one option');
  const maxLength = Math.max(...keys.map((k) => k.length));
  const limit = options.maxAttempts ?? conversation.maxNoInputAttempts;
  let empty = 0;
  let notice: string | undefined;
  for (;;) {
    const raw = await conversation.readChoice(joinPrompt(notice, prompt), maxLength, options.timeout);
    const choice = options.normalize ? options.normalize(raw) : raw;
    if (choice === '') {
      empty++;
      if (empty >= limit) throw new InputTimeoutError(`No selection after ${empty} attempts`);
      notice = NO_INPUT;
      continue;
    }
    empty = 0;
    if (keys.includes(choice)) return choice;
    notice = INVALID;
  }
}

/**
 * A menu: asks, runs the action of the chosen key and returns its result. Inside an action, the
 * caller can go back (`*`, or `back` in text) to this menu: the action's GoBackError makes the
 * menu ask again. A loop, not recursion, so going back a thousand times costs nothing.
 */
export async function menu<T>(
  conversation: Conversation,
  prompt: string,
  actions: Readonly<Record<string, MenuAction<T>>>,
  options: ChoiceOptions = {},
): Promise<T> {
  const keys = Object.keys(actions);
  for (;;) {
    const key = await readValidChoice(conversation, prompt, keys, options);
    conversation.menuDepth++;
    try {
      return await actions[key]!();
    } catch (error) {
      if (!(error instanceof GoBackError)) throw error;
    } finally {
      conversation.menuDepth--;
    }
  }
}

/** Asks and returns the value of the chosen key (`{ '1': 'sales', '2': 'support' }` → `'sales'`). */
export async function select<T>(
  conversation: Conversation,
  prompt: string,
  choices: Readonly<Record<string, T>>,
  options: ChoiceOptions = {},
): Promise<T> {
  const key = await readValidChoice(conversation, prompt, Object.keys(choices), options);
  return choices[key]!;
}

/**
 * Numbers `labels` from 1, reads them out after `prompt` ("For sales, press 1." on a call, a
 * numbered list in a chat) and returns the chosen label.
 */
export async function choose(
  conversation: Conversation,
  prompt: string,
  labels: readonly string[],
  options: ChoiceOptions = {},
): Promise<string> {
  const listing =
    conversation.kind === 'voice'
      ? labels.map((label, i) => `For ${label}, press ${i + 1}.`).join(' ')
      : `${labels.map((label, i) => `${i + 1}. ${label}`).join('\n')}\nReply with the number of your choice.`;
  const choices = Object.fromEntries(labels.map((label, i) => [String(i + 1), label]));
  return select(
    conversation,
    conversation.kind === 'voice' ? joinPrompt(prompt, listing) : `${prompt}\n${listing}`,
    choices,
    options,
  );
}

const YES = new Set(['1', 'y', 'yes', 'yeah', 'yep', 'sure', 'ok', 'okay']);
const NO = new Set(['2', 'n', 'no', 'nope']);

/** Asks a yes/no question: 1/2 on the keypad, or yes/no (and 1/2) in a chat. */
export async function askYesNo(
  conversation: Conversation,
  question: string,
  options: ChoiceOptions = {},
): Promise<boolean> {
  const suffix = conversation.kind === 'voice' ? 'Press 1 for yes or 2 for no.' : 'Please reply yes or no.';
  const normalize = (reply: string) => {
    const word = reply
      .trim()
      .toLowerCase()
      .replace(/[.!]+$/, '');
    if (word === '') return '';
    return YES.has(word) ? '1' : NO.has(word) ? '2' : word;
  };
  const key = await readValidChoice(conversation, joinPrompt(question, suffix), ['1', '2'], {
    ...options,
    normalize,
  });
  return key === '1';
}
