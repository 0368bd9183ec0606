/**
 * The web console and its softphone in a real Chromium (Debian's, driven by playwright-core):
 * the page dials the simulator through the console's WebSocket, hears the prompt through Web Audio
 * (its level meter), presses keys on the keypad, speaks through Chromium's fake microphone (a WAV),
 * and texts; the console lists the call and the conversation with their transcripts as they happen.
 *
 * Needs Chromium at /usr/bin/chromium (or CHROMIUM_PATH); .ci/run installs it. Without it the file
 * is skipped with a message saying so. With ASTERAMISK_SCREENSHOTS=<dir>, it also saves the
 * README's screenshots there.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/media/wav.js';
import { simulatorSoftphone } from '../src/sandbox/sim-softphone.js';
import { Simulator } from '../src/sandbox/simulator.js';
import { Server } from '../src/server.js';
import type { SttEngine } from '../src/stt/stt-engine.js';
import { OfflineTtsEngine } from '../src/tts/offline-tts-engine.js';

const TOKEN = 'browser-test-token';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `console-browser.test.ts: SKIPPED: no Chromium at ${CHROMIUM}. Install Debian's chromium (.ci/run does) or set CHROMIUM_PATH.`,
  );
}

/** Transcribes by measuring: proves the microphone's audio reached the app. */
const measuringStt: SttEngine = {
  name: 'measuring',
  async transcribe(pcm: Int16Array): Promise<string> {
    let peak = 0;
    for (const s of pcm) peak = Math.max(peak, Math.abs(s));
    return `${Math.round(pcm.length / 8)} ms of sound, peak ${peak}`;
  },
};

/** 0.8 s of 440 Hz then 1.2 s of silence, at 48 kHz: Chromium loops it as the microphone. */
function micWav(): Buffer {
  const rate = 48_000;
  const pcm = new Int16Array(rate * 2);
  for (let i = 0; i < rate * 0.8; i++) pcm[i] = Math.round(12_000 * Math.sin((2 * Math.PI * 440 * i) / rate));
  return encodeWav(pcm, rate);
}

describe.skipIf(!haveChromium)('web console in Chromium', () => {
  let sim: Simulator;
  let server: Server;
  let browser: Browser;
  let page: Page;
  let dir: string;
  const shots = process.env.ASTERAMISK_SCREENSHOTS;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'asteramisk-browser-'));
    const wav = join(dir, 'mic.wav');
    await writeFile(wav, micWav());
    sim = await Simulator.start();
    server = await Server.create({
      ...sim.connectionOptions(),
      appName: 'browser-test',
      tts: new OfflineTtsEngine({ msPerChar: 25 }),
      stt: measuringStt,
      ttsCacheDirectory: false,
      console: { port: 0, token: TOKEN, softphone: simulatorSoftphone(sim) },
    });
    await server.registerExtension('1000', {
      voice: async (ui) => {
        await ui.answer();
        await ui.say('Welcome to the browser test.');
        const keys = await ui.gather('Press two keys.', { numDigits: 2, timeout: 30 });
        const heard = await ui.prompt('Now say something.', { timeout: 30 });
        await ui.say(`You pressed ${keys} and I heard ${heard.split(',')[0]}.`);
        await ui.sleep(60);
      },
      text: async (ui) => {
        const name = await ui.prompt('Hi! What is your name?');
        await ui.say(`Thanks, ${name}.`);
      },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${wav}`,
        '--autoplay-policy=no-user-gesture-required',
      ],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    await page.goto(server.consoleUrl ?? '');
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await sim?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const liveCall = () => page.locator('#live .session[data-id]:not([data-id^="text:"])');
  const line = (kind: string, text: string) =>
    liveCall().locator(`.transcript li[data-kind="${kind}"]`, { hasText: text });

  it('shows the health and offers the softphone', async () => {
    await expect.poll(() => page.locator('#h-ready').textContent()).toBe('ready');
    expect(await page.locator('#phone').isVisible()).toBe(true);
    expect(await page.locator('#phone-identity').textContent()).toContain('alice');
    expect(await page.locator('#h-numbers').textContent()).toContain('1000');
  });

  it('dials 1000, hears the prompt, presses keys and speaks; the console shows it live', async () => {
    await page.fill('#dial-number', '1000');
    await page.click('#call');
    // The console lists the call while it happens, with what the app says.
    await liveCall().first().waitFor();
    await line('said', 'Welcome to the browser test.').waitFor();
    expect(await liveCall().first().locator('.who').textContent()).toContain('alice');
    expect(await liveCall().first().locator('.meta').first().textContent()).toContain('1000');
    // The speaker plays the app's audio: the level meter saw a real signal.
    await expect
      .poll(async () => Number(await page.locator('#level').getAttribute('data-peak')), { timeout: 10_000 })
      .toBeGreaterThan(0.05);
    // The keypad's keys reach gather().
    await line('said', 'Press two keys.').waitFor();
    await expect.poll(() => liveCall().first().locator('.verb').textContent()).toBe('gather');
    await page.click('#keypad button[data-key="4"]');
    await page.click('#keypad button[data-key="2"]');
    await line('keys', '42').waitFor();
    // The fake microphone's tone reaches the app over RTP and is measured by the STT stand-in.
    await line('heard', 'ms of sound').waitFor({ timeout: 20_000 });
    const heard = await line('heard', 'ms of sound').textContent();
    const peak = Number(/peak (\d+)/.exec(heard ?? '')?.[1]);
    expect(peak).toBeGreaterThan(2000);
    await line('said', 'You pressed 42').waitFor();
    if (shots) await page.screenshot({ path: join(shots, 'console-softphone.png') });
  }, 60_000);

  it('hangs up from the softphone; the call moves to the ended list', async () => {
    await page.click('#hangup');
    await expect.poll(() => page.locator('#phone-status').textContent()).toMatch(/call ended/);
    const ended = page.locator('#ended .session[data-state="ended"]:not([data-id^="text:"])');
    await ended.first().waitFor();
    expect(await ended.first().locator('.state').textContent()).toContain('caller hung up');
    expect(await ended.first().locator('.verb').count()).toBe(0);
    expect(await liveCall().count()).toBe(0);
    if (shots) await page.screenshot({ path: join(shots, 'console-ended.png'), fullPage: true });
  }, 30_000);

  it('an operator with the token hangs up a call from its card', async () => {
    await page.fill('#dial-number', '1000');
    await page.click('#call');
    await line('said', 'Welcome to the browser test.').waitFor();
    await page.fill('#token', TOKEN);
    await page.dispatchEvent('#token', 'change');
    await liveCall().first().locator('button.hangup').click();
    await expect.poll(() => page.locator('#phone-status').textContent()).toMatch(/call ended/);
    await expect.poll(() => liveCall().count()).toBe(0);
    expect(await page.locator('#ended .session .state').first().textContent()).toMatch(/ended/);
  }, 30_000);

  // After the call: during it, alice's texts to 1000 would go to the call (in-call text).
  it('texts 1000 from the chat box and shows the conversation', async () => {
    await page.fill('#chat-input', 'hello there');
    await page.click('#chat-send');
    await page.locator('#chat-log li.them', { hasText: 'What is your name?' }).waitFor();
    const conversation = page.locator('#live .session[data-id^="text:"]');
    await conversation.locator('.transcript li[data-kind="text"]', { hasText: 'hello there' }).waitFor();
    await conversation
      .locator('.transcript li[data-kind="said"]', { hasText: 'What is your name?' })
      .waitFor();
    await page.fill('#chat-input', 'Ada');
    await page.press('#chat-input', 'Enter');
    await page.locator('#chat-log li.them', { hasText: 'Thanks, Ada.' }).waitFor();
    // The handler returned: the conversation moves to the ended list.
    await page.locator('#ended .session[data-id^="text:"]', { hasText: 'Thanks, Ada.' }).waitFor();
  }, 30_000);
});
