import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { EXAMPLE_CONFIGS_DIR } from '../../src/cli/init-configs.js';
import { realAsteriskAvailable } from '../support/real-asterisk.js';
import { type CliRun, lineOf, runCli } from '../support/run-cli.js';

/**
 * `asteramisk doctor` against a real Asterisk 22 configured from example-configs/. Runs only when
 * ASTERISK_HOST is set (with ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS). The first four tests
 * are read-only on the shared PBX: the probe's externalMedia channels and bridge are its own and
 * are removed.
 *
 * Two tests change the PBX for a few seconds, so they run only when permitted, and then this file
 * should run alone (other real tests would see the change):
 * - ASTERISK_CLI_COMMAND, a command that runs one Asterisk CLI command given as its last argument
 *   (e.g. `/opt/asterisk/sbin/asterisk -rx`): unloads chan_rtp.so, then loads it again.
 * - ASTERISK_CLI_COMMAND and ASTERISK_CONFIG_DIR (the PBX's config folder, e.g.
 *   /opt/asterisk/etc/asterisk, writable here): installs the files `init-configs` generates, with
 *   their new passwords, then restores the originals (see {@link restoreConfigs}).
 */
const run = realAsteriskAvailable('doctor.real.test.ts');
const cliCommand = process.env.ASTERISK_CLI_COMMAND;
const configDir = process.env.ASTERISK_CONFIG_DIR;
const canUnload =
  run &&
  realAsteriskAvailable('doctor.real.test.ts (chan_rtp unloaded)', {
    ok: cliCommand !== undefined,
    needs:
      'ASTERISK_CLI_COMMAND (e.g. "/opt/asterisk/sbin/asterisk -rx"; it unloads chan_rtp.so for a moment)',
  });
const canReconfigure =
  run &&
  realAsteriskAvailable('doctor.real.test.ts (configs from init-configs)', {
    ok: cliCommand !== undefined && configDir !== undefined,
    needs:
      'ASTERISK_CLI_COMMAND and ASTERISK_CONFIG_DIR (e.g. /opt/asterisk/etc/asterisk; it installs generated configs, then restores the originals)',
  });

/** Runs one Asterisk CLI command through ASTERISK_CLI_COMMAND; resolves with its output. */
async function asteriskCli(command: string): Promise<string> {
  if (/'/.test(command)) throw new Error(`no quotes in CLI commands: ${command}`);
  const { stdout } = await promisify(execFile)('sh', ['-c', `${cliCommand} '${command}'`], {
    timeout: 30_000,
  });
  return stdout;
}

const env: Record<string, string> = {};
for (const [k, v] of Object.entries(process.env)) {
  if (v !== undefined && /^(ASTERISK_|ASTERAMISK_|RTP_)/.test(k)) env[k] = v;
}

describe.runIf(run)('asteramisk doctor on a real Asterisk', () => {
  it('passes every check', async () => {
    const r = await runCli(['doctor'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const what of [
      'ARI:',
      'AMI:',
      'Asterisk version: 22',
      'modules:',
      'call context:',
      'text context:',
      'endpoints:',
    ]) {
      expect(lineOf(r, '✔', what), `${what}\n${r.stdout}`).toBeDefined();
    }
    expect(lineOf(r, '✔', 'RTP round trip'), r.stdout).toMatch(/carried both ways/);
    expect(r.lines.at(-1)).toBe('doctor: all checks passed');
  }, 40_000);

  it('fails on a wrong ARI password with the ARI line and its fix', async () => {
    const r = await runCli(['doctor'], { ...env, ASTERISK_ARI_PASS: 'not-the-password' });
    expect(r.code).toBe(1);
    expect(lineOf(r, '✘', 'ARI:')).toMatch(
      /refused user .*401.*fix: set ASTERISK_ARI_USER\/ASTERISK_ARI_PASS/,
    );
    expect(r.lines.at(-1)).toMatch(/^doctor: FAILED: ARI: /);
  }, 40_000);

  it('fails when Asterisk cannot send RTP to ASTERAMISK_HOST', async () => {
    const r = await runCli(['doctor', '--timeout', '2000'], { ...env, ASTERAMISK_HOST: '192.0.2.1' });
    expect(r.code).toBe(1);
    expect(lineOf(r, '✘', 'RTP round trip')).toMatch(
      /no RTP came back from Asterisk to 192\.0\.2\.1.*fix: set ASTERAMISK_HOST/,
    );
    expect(r.lines.at(-1)).toMatch(/^doctor: FAILED: RTP round trip/);
  }, 40_000);

  it('fails on a missing call context', async () => {
    const r = await runCli(['doctor'], {
      ...env,
      ASTERISK_INCOMING_CALL_CONTEXT: 'asteramisk-no-such-context',
    });
    expect(r.code).toBe(1);
    expect(lineOf(r, '✘', 'call context: asteramisk-no-such-context does not exist')).toBeDefined();
  }, 40_000);

  it.runIf(canUnload)(
    'fails with the modules line naming chan_rtp and its fix when chan_rtp is unloaded (needs ASTERISK_CLI_COMMAND)',
    async () => {
      let r: CliRun;
      try {
        expect(await asteriskCli('module unload chan_rtp.so')).toMatch(/Unloaded chan_rtp/);
        r = await runCli(['doctor', '--tts', 'none', '--stt', 'none'], env);
      } finally {
        await asteriskCli('module load chan_rtp.so');
      }
      expect(r.code, r.stdout).toBe(1);
      expect(lineOf(r, '✘', 'modules:'), r.stdout).toBe(
        "✘ modules: not loaded: chan_rtp — fix: asterisk -rx 'module load chan_rtp.so'",
      );
      // Without chan_rtp there is no externalMedia: the media probe fails too, and names it.
      expect(lineOf(r, '✘', 'RTP round trip'), r.stdout).toMatch(/fix: check chan_rtp/);
      // The first failure, hence the summary, is the modules line.
      expect(r.lines.at(-1)).toBe(
        "doctor: FAILED: modules: not loaded: chan_rtp; fix: asterisk -rx 'module load chan_rtp.so'",
      );
      // Loaded again: the PBX is as it was.
      expect(await asteriskCli('module show like chan_rtp.so')).toMatch(/chan_rtp\.so\s.*Running/);
      const after = await runCli(['doctor', '--tts', 'none', '--stt', 'none'], env);
      expect(lineOf(after, '✔', 'modules:'), after.stdout).toBeDefined();
      expect(after.code, after.stdout).toBe(0);
    },
    60_000,
  );

  describe.runIf(canReconfigure)(
    'configured by init-configs (needs ASTERISK_CLI_COMMAND, ASTERISK_CONFIG_DIR)',
    () => {
      afterAll(async () => {
        // A test that timed out may still be between install and restore: restore here too.
        await restoreConfigs();
      });

      it('passes every check with the files and the environment init-configs printed', async () => {
        const files = (await readdir(EXAMPLE_CONFIGS_DIR)).filter((f) => f.endsWith('.conf')).sort();
        expect(files).toEqual(
          expect.arrayContaining(['ari.conf', 'http.conf', 'manager.conf', 'pjsip.conf', 'extensions.conf']),
        );
        await restoreConfigs(); // left over from a run that was killed before it restored
        await backUpConfigs(files);
        const originals = new Map<string, Buffer>();
        for (const f of files) {
          const path = join(configDir!, f);
          if (existsSync(path)) originals.set(f, await readFile(path));
        }

        // init-configs over a copy of the PBX's folder: it backs up what it replaces.
        const work = await mkdtemp(join(tmpdir(), 'asteramisk-init-configs-real-'));
        let generated: CliRun;
        try {
          for (const [f, bytes] of originals) await writeFile(join(work, f), bytes, { mode: 0o644 });
          generated = await runCli(['init-configs', '--dir', work]);
          expect(generated.code, generated.stdout + generated.stderr).toBe(0);
          for (const [f, bytes] of originals) {
            const backup = (await readdir(work)).find((n) => n.startsWith(`${f}.bak-`));
            expect(backup, `${f} backed up`).toBeDefined();
            expect(await readFile(join(work, backup!))).toEqual(bytes);
          }
          // The files with a secret are not world-readable, replaced ones included.
          for (const f of ['ari.conf', 'manager.conf']) {
            expect((await stat(join(work, f))).mode & 0o007, f).toBe(0);
          }
          const printed: Record<string, string> = {};
          for (const line of generated.lines) {
            const m = /^export ([A-Z_]+)=(.*)$/.exec(line);
            if (m) printed[m[1]!] = m[2]!;
          }
          expect(Object.keys(printed)).toEqual(
            expect.arrayContaining(['ASTERISK_HOST', 'ASTERISK_ARI_PASS', 'ASTERISK_AMI_PASS']),
          );
          expect(printed.ASTERISK_ARI_PASS).not.toBe(env.ASTERISK_ARI_PASS);

          // Install them and apply them the way init-configs says.
          for (const f of files) await copyFile(join(work, f), join(configDir!, f));
          expect(generated.stdout).toContain("asterisk -rx 'core reload'");
          await asteriskCli('core reload');
          await ariAccepts(printed.ASTERISK_ARI_USER!, printed.ASTERISK_ARI_PASS!);

          const r = await runCli(['doctor'], printed);
          expect(r.code, r.stdout + r.stderr).toBe(0);
          for (const what of [
            'ARI:',
            'AMI:',
            'Asterisk version: 22',
            'modules:',
            'call context: asteramisk-call',
            'text context: asteramisk-text',
            'endpoints:',
            'RTP round trip',
          ]) {
            expect(lineOf(r, '✔', what), `${what}\n${r.stdout}`).toBeDefined();
          }
          expect(
            r.lines.filter((l) => l.startsWith('✘')),
            r.stdout,
          ).toEqual([]);
          expect(r.lines.at(-1)).toBe('doctor: all checks passed');
          // The generated passwords are the ones in force: the old ones are refused now.
          const old = await runCli(['doctor', '--tts', 'none', '--stt', 'none'], env);
          expect(lineOf(old, '✘', 'ARI:'), old.stdout).toMatch(/401/);
        } finally {
          await rm(work, { recursive: true, force: true });
          await restoreConfigs();
        }

        // Restored byte for byte, and the PBX answers the original users again.
        for (const [f, bytes] of originals) expect(await readFile(join(configDir!, f)), f).toEqual(bytes);
        const back = await runCli(['doctor', '--tts', 'none', '--stt', 'none'], env);
        expect(back.code, back.stdout).toBe(0);
      }, 120_000);
    },
  );
});

/**
 * The PBX's original configs, kept outside the test's temporary folders so that a run killed
 * before it restored them is repaired by the next run ({@link restoreConfigs} at its start). The
 * folder is complete or absent: it is filled under another name, then renamed.
 */
const BACKUP_DIR = join(tmpdir(), 'asteramisk-doctor-real-config-backup');
const MANIFEST = 'manifest.json';

interface Manifest {
  configDir: string;
  /** File name → mode, or null when the PBX had no such file (restore removes it). */
  files: Record<string, number | null>;
}

async function backUpConfigs(files: string[]): Promise<void> {
  const partial = `${BACKUP_DIR}.partial`;
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  const manifest: Manifest = { configDir: configDir!, files: {} };
  for (const f of files) {
    const path = join(configDir!, f);
    if (existsSync(path)) {
      await copyFile(path, join(partial, f));
      manifest.files[f] = (await stat(path)).mode & 0o7777;
    } else manifest.files[f] = null;
  }
  await writeFile(join(partial, MANIFEST), JSON.stringify(manifest));
  await rename(partial, BACKUP_DIR);
}

/**
 * Puts the backed-up configs back (removing files the PBX did not have), reloads Asterisk and
 * waits until ARI accepts the original user again; only then drops the backup. Does nothing
 * without a backup, so it is safe to call more than once.
 */
async function restoreConfigs(): Promise<void> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(join(BACKUP_DIR, MANIFEST), 'utf8')) as Manifest;
  } catch {
    return;
  }
  for (const [f, mode] of Object.entries(manifest.files)) {
    const target = join(manifest.configDir, f);
    if (mode === null) await rm(target, { force: true });
    else {
      await copyFile(join(BACKUP_DIR, f), target);
      await chmod(target, mode);
    }
  }
  await asteriskCli('core reload');
  await ariAccepts(env.ASTERISK_ARI_USER ?? 'asteramisk', env.ASTERISK_ARI_PASS ?? 'asteramisk');
  await rm(BACKUP_DIR, { recursive: true, force: true });
}

/** Waits (up to 10 s) until ARI answers `user`/`password` with 200. */
async function ariAccepts(user: string, password: string): Promise<void> {
  const url = `http://${env.ASTERISK_HOST ?? '127.0.0.1'}:${env.ASTERISK_ARI_PORT ?? 8088}/ari/asterisk/info`;
  const authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
  const deadline = Date.now() + 10_000;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { headers: { authorization } });
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`ARI did not accept ${user} within 10 s after the reload (${last})`);
}
