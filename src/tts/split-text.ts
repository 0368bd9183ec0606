/**
 * Cuts text that is too long for one TTS request into pieces, preferring sentence ends, then word
 * boundaries, and only as a last resort the middle of a word. OpenAI accepts 4096 characters per
 * request, Google 5000 bytes of UTF-8.
 */

/** Measures a piece of text in the unit of the limit (characters by default). */
export type TextMeasure = (text: string) => number;

export const measureChars: TextMeasure = (text) => text.length;
export const measureUtf8Bytes: TextMeasure = (text) => Buffer.byteLength(text, 'utf8');

function pack(parts: string[], limit: number, measure: TextMeasure, separator: string): string[] {
  const chunks: string[] = [];
  let current = '';
  for (const part of parts) {
    const candidate = current === '' ? part : `${current}${separator}${part}`;
    if (measure(candidate) <= limit) {
      current = candidate;
      continue;
    }
    if (current !== '') chunks.push(current);
    current = part;
  }
  if (current !== '') chunks.push(current);
  return chunks;
}

function hardSplit(word: string, limit: number, measure: TextMeasure): string[] {
  const out: string[] = [];
  let current = '';
  for (const ch of word) {
    if (current !== '' && measure(current + ch) > limit) {
      out.push(current);
      current = '';
    }
    current += ch;
  }
  if (current !== '') out.push(current);
  return out;
}

/**
 * Splits `text` into pieces each at most `limit` units long (per `measure`), without losing words.
 *
 * @throws {RangeError} when `limit` is below 1.
 */
export function splitText(text: string, limit: number, measure: TextMeasure = measureChars): string[] {
  if (limit < 1) throw new RangeError(`limit must be at least 1, got ${limit}`);
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (measure(trimmed) <= limit) return [trimmed];
  const sentences = trimmed.split(/(?<=[.!?;:。！？])\s+/);
  const pieces: string[] = [];
  for (const sentence of sentences) {
    if (measure(sentence) <= limit) {
      pieces.push(sentence);
      continue;
    }
    const words = sentence
      .split(/\s+/)
      .flatMap((w) => (measure(w) <= limit ? [w] : hardSplit(w, limit, measure)));
    pieces.push(...pack(words, limit, measure, ' '));
  }
  return pack(pieces, limit, measure, ' ');
}
