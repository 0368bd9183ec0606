/**
 * Says once per file why real-Asterisk tests are skipped, so a green run never hides that they did
 * not run. Returns whether they run.
 */
export function realAsteriskAvailable(file: string, extra?: { ok: boolean; needs: string }): boolean {
  if (!process.env.ASTERISK_HOST) {
    console.info(
      `${file}: skipped; set ASTERISK_HOST (and ASTERISK_ARI_USER/PASS, ASTERISK_AMI_USER/PASS) to run against a real Asterisk 22`,
    );
    return false;
  }
  if (extra && !extra.ok) {
    console.info(`${file}: skipped; needs ${extra.needs}`);
    return false;
  }
  return true;
}
