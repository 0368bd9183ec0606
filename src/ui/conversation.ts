/**
 * What the shared conversational verbs (menu, select, choose, askYesNo) need from a UI, voice or
 * text. Each UI implements it with its own input: keypad digits on a call, replies in a chat.
 */
export interface Conversation {
  readonly kind: 'voice' | 'text';
  /** Speaks or sends `text`. */
  say(text: string): Promise<void>;
  /**
   * Asks `prompt` and reads one choice: up to `maxLength` digits on a call, the next reply in a
   * chat (trimmed). `''` means no input. Throws GoBackError when the caller asks to go back inside
   * a menu callback. With `spokenHints` a caller may also say the choice (the transcript is
   * returned; the words the speech engine should expect are the hints).
   */
  readChoice(
    prompt: string,
    maxLength: number,
    timeoutSeconds?: number,
    spokenHints?: readonly string[],
  ): Promise<string>;
  /** Consecutive empty inputs before InputTimeoutError. */
  readonly maxNoInputAttempts: number;
  /** Nesting depth of menu callbacks: going back is possible only inside one. */
  menuDepth: number;
}

/** A menu option: what runs when the caller picks its key. */
export type MenuAction<T> = () => T | Promise<T>;

/** Options of menu, select, choose and askYesNo. */
export interface ChoiceOptions {
  /** Consecutive empty inputs before InputTimeoutError. Default: the config's MAX_NO_INPUT_ATTEMPTS. */
  maxAttempts?: number;
  /** Seconds to wait for an answer at each attempt. Default: 5 on a call (Twilio's Gather), the prompt timeout in a chat. */
  timeout?: number;
  /**
   * On a call, the caller may also say the choice instead of pressing its key, as Twilio's
   * `input="dtmf speech"`: "yes"/"no" for askYesNo, a label for choose, the key as a word ("two")
   * for menu and select. Needs a speech-to-text engine (ConfigError otherwise). Default false. In a
   * chat, replies are always read as words too.
   */
  speech?: boolean;
}

/** Joins prompt fragments with single spaces, dropping empty ones. */
export function joinPrompt(...parts: (string | undefined)[]): string {
  return parts
    .map((p) => p?.trim() ?? '')
    .filter(Boolean)
    .join(' ');
}
