import type { CgroupUsage } from './cgroup-usage.js';

/**
 * How much of its limit a process must be using, less the page cache the kernel can drop, for a
 * reclaim at the limit to count as the process's own memory pressing on it. A process that only
 * fills its limit with inactive cache (a log writer, say) hits the limit harmlessly, all day.
 */
export const QUOTA_SHARE = 0.9;

/**
 * Heroku's R14 (Memory quota exceeded: the dyno goes on running, paging to swap) in rack's terms.
 * rack gives a process no swap (isolation.ts sets MemorySwap to its memory), so going past the
 * limit is an OOM kill, R15. What rack can see short of that is the process pressing on its limit:
 * the kernel had to reclaim to keep it under (the limit-hit counter grew since the last sample)
 * while what it uses, cache it could drop aside, is at least QUOTA_SHARE of the limit. Such a
 * process runs on, slowed as its own code pages are dropped and read back: R14's symptom.
 *
 * @param was whether the last sample found it over: it stays over while it stays at that share,
 * so the event is told once a stretch, not every 10 s.
 */
export function overMemoryQuota(now: CgroupUsage, lastHits: number | undefined, was: boolean): boolean {
  if (now.limitBytes === undefined || now.memoryBytes < now.limitBytes * QUOTA_SHARE) return false;
  if (was) return true;
  return lastHits !== undefined && now.limitHits !== undefined && now.limitHits > lastHits;
}
