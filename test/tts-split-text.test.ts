import { describe, expect, it } from 'vitest';
import { measureUtf8Bytes, splitText } from '../src/tts/split-text.js';

describe('splitText', () => {
  it('returns short text whole and blank text as nothing', () => {
    expect(splitText('  Hello there.  ', 100)).toEqual(['Hello there.']);
    expect(splitText('   ', 100)).toEqual([]);
  });

  it('cuts at sentence ends, then words, then inside a word, never losing text', () => {
    const text = 'One two three. Four five six seven eight! Supercalifragilistic nine.';
    const pieces = splitText(text, 20);
    for (const p of pieces) expect(p.length).toBeLessThanOrEqual(20);
    expect(pieces[0]).toBe('One two three.');
    expect(pieces.join(' ').replace(/\s+/g, '')).toBe(text.replace(/\s+/g, ''));
  });

  it('measures UTF-8 bytes when asked', () => {
    const text = 'é'.repeat(10); // 20 bytes
    const pieces = splitText(text, 8, measureUtf8Bytes);
    for (const p of pieces) expect(Buffer.byteLength(p)).toBeLessThanOrEqual(8);
    expect(pieces.join('')).toBe(text);
  });
});
