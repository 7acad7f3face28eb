/**
 * Remote video shown the way an app shows it, through the SDK's attachTrack (so the SDK's
 * adaptive stream follows the element): a <video> of a fixed CSS size, pinned on top of the
 * demo page. Used by the simulcast tests and the topology benchmark.
 */
import type { Page } from 'playwright-core';

interface SdkOnPage {
  attachTrack(track: MediaStreamTrack, element?: HTMLVideoElement): HTMLVideoElement;
  detachTrack(track: MediaStreamTrack, element?: HTMLVideoElement): HTMLVideoElement[];
}

declare global {
  interface Window {
    switchboardSdk?: SdkOnPage;
  }
}

/** Loads the SDK module the demo page uses (the same module instance, so attachTrack's registry is the Room's) as window.switchboardSdk. */
async function loadSdk(page: Page): Promise<void> {
  if (await page.evaluate(() => window.switchboardSdk !== undefined)) return;
  // A module import from the page's own origin, which its Content-Security-Policy allows (an inline script it refuses).
  await page.evaluate(async (url) => {
    window.switchboardSdk = (await import(url)) as SdkOnPage;
  }, '/sdk/esm/switchboard.js');
}

/**
 * Shows `identity`'s live video track in a new <video id=elementId> of width x height CSS pixels
 * (object-fit contain, fixed at the top left of the page, the last one on top). Resolves false
 * while the page has no live video track of that participant.
 */
export async function showVideoOf(page: Page, identity: string, elementId: string, width: number, height: number): Promise<boolean> {
  await loadSdk(page);
  return page.evaluate(
    ({ identity, elementId, width, height }) => {
      const track = [...(window.switchboardRoom.participants.get(identity)?.tracks.values() ?? [])].find(
        (t) => t.kind === 'video' && t.readyState === 'live',
      );
      if (!track || !window.switchboardSdk) return false;
      const video = document.createElement('video');
      video.id = elementId;
      video.style.cssText = `position:fixed;left:0;top:0;width:${width}px;height:${height}px;object-fit:contain;z-index:10;background:#000`;
      document.body.append(video);
      window.switchboardSdk.attachTrack(track, video);
      return true;
    },
    { identity, elementId, width, height },
  );
}

/** Hides (display: none) or shows again the element showVideoOf made. */
export async function setTileHidden(page: Page, elementId: string, hidden: boolean): Promise<void> {
  await page.evaluate(
    ({ elementId, hidden }) => {
      const video = document.getElementById(elementId) as HTMLVideoElement | null;
      if (!video) throw new Error(`no element ${elementId}`);
      video.style.display = hidden ? 'none' : '';
    },
    { elementId, hidden },
  );
}

/** Gives the element showVideoOf made another CSS size. */
export async function resizeTile(page: Page, elementId: string, width: number, height: number): Promise<void> {
  await page.evaluate(
    ({ elementId, width, height }) => {
      const video = document.getElementById(elementId) as HTMLVideoElement | null;
      if (!video) throw new Error(`no element ${elementId}`);
      video.style.width = `${width}px`;
      video.style.height = `${height}px`;
    },
    { elementId, width, height },
  );
}

/** The decoded frame size of the element showVideoOf made (videoWidth x videoHeight), and its frames so far. */
export async function decodedSize(page: Page, elementId: string): Promise<{ width: number; height: number; frames: number }> {
  return page.evaluate((elementId) => {
    const video = document.getElementById(elementId) as HTMLVideoElement | null;
    if (!video) throw new Error(`no element ${elementId}`);
    return { width: video.videoWidth, height: video.videoHeight, frames: video.getVideoPlaybackQuality().totalVideoFrames };
  }, elementId);
}
