/**
 * Numbered reliable data messages between demo pages (window.switchboardRoom): each page
 * records what arrives per sender and sends 1, 2, 3, ... while its room is connected, so a
 * test can check every message arrived exactly once, in order.
 */
import type { Page } from 'playwright-core';
import { waitFor } from './server.js';

/** Records the numbered messages that arrive on a page, per sender. */
export async function recordSequence(page: Page): Promise<void> {
  await page.evaluate(() => {
    window.seqReceived = {};
    window.switchboardRoom.on('data', (payload: unknown, participant: unknown) => {
      const p = payload as { type?: string; n?: number };
      if (p.type !== 'seq') return;
      const from = (participant as { identity: string }).identity;
      (window.seqReceived[from] ??= []).push(p.n as number);
    });
  });
}

/** Sends a numbered reliable message every `intervalMs` while the room is connected (a send skipped while reconnecting is not counted). */
export async function sendSequence(page: Page, intervalMs: number): Promise<void> {
  await page.evaluate((interval) => {
    window.seqSent = 0;
    window.seqTimer = setInterval(() => {
      if (window.switchboardRoom.state !== 'connected') return;
      window.switchboardRoom.send({ type: 'seq', n: window.seqSent + 1 });
      window.seqSent++;
    }, interval);
  }, intervalMs);
}

/** Stops sending; answers who sent and how many. */
export async function stopSequence(page: Page): Promise<{ identity: string; sent: number }> {
  return page.evaluate(() => {
    clearInterval(window.seqTimer);
    return { identity: window.switchboardRoom.localParticipant.identity, sent: window.seqSent };
  });
}

/** "3-7, 12" for [3,4,5,6,7,12]: readable failure messages. */
export function ranges(numbers: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < numbers.length; i++) {
    let j = i;
    while (j + 1 < numbers.length && numbers[j + 1] === (numbers[j] as number) + 1) j++;
    parts.push(i === j ? String(numbers[i]) : `${numbers[i]}-${numbers[j]}`);
    i = j;
  }
  return parts.join(', ');
}

/** Waits (up to 20 s) until every page holds the last message of every other sender: resends after a loss take a while on a loaded machine. */
export async function settle(pages: Page[], senders: Array<{ identity: string; sent: number }>): Promise<void> {
  await waitFor(
    async () => {
      await new Promise((r) => setTimeout(r, 250));
      for (const page of pages) {
        const [self, received] = await page.evaluate(() => [window.switchboardRoom.localParticipant.identity, window.seqReceived] as const);
        for (const sender of senders)
          if (sender.identity !== self && !(received[sender.identity] ?? []).includes(sender.sent)) return false;
      }
      return true;
    },
    20000,
    'every last message to arrive',
  ).catch(() => undefined); // the caller's exactly-once check says what is missing
}
