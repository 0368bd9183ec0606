import { randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** example-configs/ of the package: two levels up from src/cli/ and from dist/cli/ alike. */
export const EXAMPLE_CONFIGS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../example-configs');

export interface InitConfigsOptions {
  /** Asterisk's configuration folder. Default /etc/asterisk. */
  dir?: string;
  /** Receives each output line. Default console.log. */
  print?: (line: string) => void;
  /** Where the examples are read from. Default {@link EXAMPLE_CONFIGS_DIR}. */
  source?: string;
  /** The backup suffix's time. Default now. */
  now?: Date;
}

/** What {@link initConfigs} did. Secrets are only in `env`. */
export interface InitConfigsResult {
  written: string[];
  backups: string[];
  env: Record<string, string>;
}

/** A secret of 24 random bytes, URL-safe base64 (no characters .conf files or shells treat specially). */
function secret(): string {
  return randomBytes(24).toString('base64url');
}

/** `20261206T150812Z`: sorts by time, no characters that need quoting. */
function stamp(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Replaces `key = CHANGE_ME` on uncommented lines only (commented templates keep their placeholder). */
function fill(text: string, key: string, value: string): string {
  const re = new RegExp(`^(\\s*${key}\\s*=\\s*)CHANGE_ME\\b`, 'gm');
  return text.replace(re, `$1${value}`);
}

async function exists(path: string): Promise<{ mode: number } | undefined> {
  try {
    const s = await stat(path);
    return { mode: s.mode & 0o777 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Writes example-configs/*.conf into `dir` with generated ARI and AMI secrets, copying every file it
 * replaces to `FILE.bak-<UTC timestamp>` first, then prints the environment to export (the only
 * place the secrets are shown) and how to make Asterisk load the files.
 */
export async function initConfigs(options: InitConfigsOptions = {}): Promise<InitConfigsResult> {
  const dir = resolve(options.dir ?? '/etc/asterisk');
  const print = options.print ?? ((line: string) => console.log(line));
  const source = options.source ?? EXAMPLE_CONFIGS_DIR;
  const suffix = `.bak-${stamp(options.now ?? new Date())}`;
  const ariPassword = secret();
  const amiPassword = secret();
  const files = (await readdir(source)).filter((f) => f.endsWith('.conf')).sort();
  await mkdir(dir, { recursive: true });

  const result: InitConfigsResult = { written: [], backups: [], env: {} };
  for (const file of files) {
    let text = await readFile(join(source, file), 'utf8');
    if (file === 'ari.conf') text = fill(text, 'password', ariPassword);
    if (file === 'manager.conf') text = fill(text, 'secret', amiPassword);
    const target = join(dir, file);
    const old = await exists(target);
    if (old) {
      const backup = `${target}${suffix}`;
      await copyFile(target, backup);
      result.backups.push(backup);
      print(`backed up ${target} -> ${backup}`);
    }
    const holdsSecret = file === 'ari.conf' || file === 'manager.conf';
    // A file with a secret is not world-readable; a replaced file keeps its mode otherwise.
    const mode = holdsSecret ? (old?.mode ?? 0o640) & 0o770 : (old?.mode ?? 0o644);
    await writeFile(target, text, { mode });
    // writeFile's mode applies only to a new file: a replaced world-readable ari.conf would keep
    // its 0644 while now holding a generated secret. The owner (e.g. asterisk) is kept.
    if (old) await chmod(target, mode);
    result.written.push(target);
    print(`wrote ${target}`);
  }

  result.env = {
    ASTERISK_HOST: '127.0.0.1',
    ASTERISK_ARI_USER: 'asteramisk',
    ASTERISK_ARI_PASS: ariPassword,
    ASTERISK_AMI_USER: 'asteramisk',
    ASTERISK_AMI_PASS: amiPassword,
    ASTERISK_INCOMING_CALL_CONTEXT: 'asteramisk-call',
    ASTERISK_INCOMING_TEXT_CONTEXT: 'asteramisk-text',
    ASTERAMISK_HOST: '127.0.0.1',
  };
  print('');
  print('Export this environment for asteramisk (it holds the generated secrets; keep it private):');
  print('');
  for (const [name, value] of Object.entries(result.env)) print(`export ${name}=${value}`);
  print('');
  print('Then make Asterisk load the files, all at once:');
  print("  asterisk -rx 'core reload'");
  print('or one by one:');
  print("  asterisk -rx 'module reload http'            # http.conf");
  print("  asterisk -rx 'module reload res_ari.so'      # ari.conf");
  print("  asterisk -rx 'manager reload'                # manager.conf");
  print("  asterisk -rx 'module reload res_pjsip.so'    # pjsip.conf");
  print("  asterisk -rx 'dialplan reload'               # extensions.conf");
  print("  asterisk -rx 'module reload res_rtp_asterisk.so'  # rtp.conf");
  print('A changed http.conf bind address or port needs an Asterisk restart. Then run `asteramisk doctor`.');
  return result;
}
