/** Share of the signal's energy at `hz` (Goertzel, 8 kHz): about 1 for a pure tone of that frequency. */
export function toneShare(pcm: Int16Array, hz: number): number {
  const k = 2 * Math.cos((2 * Math.PI * hz) / 8000);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (const x of pcm) {
    const s = x + k * s1 - s2;
    s2 = s1;
    s1 = s;
    energy += x * x;
  }
  const power = s1 * s1 + s2 * s2 - k * s1 * s2;
  return energy === 0 ? 0 : (2 * power) / (pcm.length * energy);
}

/** The loudest `ms` of 8 kHz `pcm`, in steps of 100 ms. */
export function loudest(pcm: Int16Array, ms: number): Int16Array {
  const n = ms * 8;
  let best = 0;
  let bestEnergy = -1;
  for (let start = 0; start + n <= pcm.length; start += 800) {
    let e = 0;
    for (let i = start; i < start + n; i++) e += pcm[i]! * pcm[i]!;
    if (e > bestEnergy) {
      bestEnergy = e;
      best = start;
    }
  }
  return pcm.subarray(best, best + n);
}
