import { GoBackError, InputTimeoutError, InvalidInputError } from '../../errors.js';
import { type ChoiceOptions, type Conversation, joinPrompt, type MenuAction } from '../conversation.js';

const NO_INPUT = "I didn't receive a selection. Please try again.";
const INVALID = "That wasn't one of the choices. Please try again.";

/** How a choice can be said in words: what the speech engine should expect, and the key a reply means. */
export interface ChoiceWords {
  hints: readonly string[];
  /** The key `reply` names, or undefined when it names none. */
  toKey(reply: string): string | undefined;
}

const DIGIT_WORDS: Readonly<Record<string, string>> = {
  zero: '0',
  oh: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
};

/** The lower-case words of a reply ("Two, please." → two, please). */
function wordsOf(reply: string): string[] {
  return reply.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** Keys said as words: "two" or "2" for key 2 (a single-digit key). */
function numberWords(keys: readonly string[]): ChoiceWords {
  const byWord = new Map<string, string>();
  for (const [word, digit] of Object.entries(DIGIT_WORDS)) if (keys.includes(digit)) byWord.set(word, digit);
  for (const key of keys) byWord.set(key.toLowerCase(), key);
  return {
    hints: [...byWord.keys()].filter((w) => /^\p{L}+$/u.test(w)),
    toKey: (reply) => {
      for (const word of wordsOf(reply)) {
        const key = byWord.get(word);
        if (key !== undefined) return key;
      }
      return undefined;
    },
  };
}

/**
 * Asks until the caller picks a key of `options`, then returns the key. Empty input repeats the
 * prompt with a notice and counts toward `maxAttempts` (then InputTimeoutError); a wrong key
 * repeats with another notice.
 */
export async function readValidChoice(
  conversation: Conversation,
  prompt: string,
  keys: readonly string[],
  options: ChoiceOptions & { normalize?: (reply: string) => string; words?: ChoiceWords } = {},
): Promise<string> {
  if (keys.length === 0) throw new InvalidInputError('A menu needs at least one option');
  const maxLength = Math.max(...keys.map((k) => k.length));
  const limit = options.maxAttempts ?? conversation.maxNoInputAttempts;
  let empty = 0;
  let notice: string | undefined;
  for (;;) {
    const words = options.words ?? numberWords(keys);
    const hints = options.speech && conversation.kind === 'voice' ? words.hints : undefined;
    const raw = await conversation.readChoice(joinPrompt(notice, prompt), maxLength, options.timeout, hints);
    let choice = options.normalize ? options.normalize(raw) : raw;
    if (choice !== '' && !keys.includes(choice)) choice = words.toKey(raw) ?? choice;
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
  const spoken = options.speech === true && conversation.kind === 'voice';
  const listing =
    conversation.kind === 'voice'
      ? labels
          .map((label, i) =>
            spoken ? `For ${label}, say ${label} or press ${i + 1}.` : `For ${label}, press ${i + 1}.`,
          )
          .join(' ')
      : `${labels.map((label, i) => `${i + 1}. ${label}`).join('\n')}\nReply with the number of your choice.`;
  const keys = labels.map((_, i) => String(i + 1));
  const numbers = numberWords(keys);
  // The longest label first, so that "extra large" wins over "large".
  const byLength = labels.map((label, i) => ({ label: label.toLowerCase(), key: keys[i]! }));
  byLength.sort((a, b) => b.label.length - a.label.length);
  const words: ChoiceWords = {
    hints: [...labels, ...numbers.hints],
    toKey: (reply) => {
      const text = ` ${wordsOf(reply).join(' ')} `;
      const named = byLength.find(
        ({ label }) => label !== '' && text.includes(` ${wordsOf(label).join(' ')} `),
      );
      return named?.key ?? numbers.toKey(reply);
    },
  };
  const key = await readValidChoice(
    conversation,
    conversation.kind === 'voice' ? joinPrompt(prompt, listing) : `${prompt}\n${listing}`,
    keys,
    { ...options, words },
  );
  return labels[Number(key) - 1]!;
}

const YES = new Set(['1', 'y', 'yes', 'yeah', 'yep', 'sure', 'ok', 'okay']);
const NO = new Set(['2', 'n', 'no', 'nope']);

/** Asks a yes/no question: 1/2 on the keypad, or yes/no (and 1/2) in a chat. */
export async function askYesNo(
  conversation: Conversation,
  question: string,
  options: ChoiceOptions = {},
): Promise<boolean> {
  const suffix =
    conversation.kind === 'text'
      ? 'Please reply yes or no.'
      : options.speech
        ? 'Say yes or no, or press 1 for yes and 2 for no.'
        : 'Press 1 for yes or 2 for no.';
  const normalize = (reply: string) => {
    const word = reply
      .trim()
      .toLowerCase()
      .replace(/[.!]+$/, '');
    if (word === '') return '';
    return YES.has(word) ? '1' : NO.has(word) ? '2' : word;
  };
  const words: ChoiceWords = {
    hints: ['yes', 'no'],
    toKey: (reply) => {
      for (const word of wordsOf(reply)) {
        if (YES.has(word)) return '1';
        if (NO.has(word)) return '2';
      }
      return undefined;
    },
  };
  const key = await readValidChoice(conversation, joinPrompt(question, suffix), ['1', '2'], {
    ...options,
    normalize,
    words,
  });
  return key === '1';
}
