/** Node's active handles and requests by kind (UDPWrap, Timeout, TCPSocketWrap…), for leak checks. */
export function resourceCounts(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}
