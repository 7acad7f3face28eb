import { attachedElements, watchAttachments, type MediaElement } from './attach.js';

/** How a remote video track is shown: the largest size of its visible elements, in device pixels. */
export interface TrackViewReport {
  visible: boolean;
  width: number;
  height: number;
}

/** Reports of size changes wait this long for the next one (a window being resized sends dozens). */
const REPORT_DEBOUNCE_MS = 100;

/**
 * Adaptive stream (LiveKit's): follows the elements a remote video track is attached to
 * (attachTrack) with a ResizeObserver and an IntersectionObserver, and reports the largest size
 * it is visible at, or that it is not visible (every element hidden, scrolled away, or the track
 * detached from all of them). A track never attached through attachTrack is not reported (the
 * SFU sends it in full). One report is in flight at a time, and only changes are sent.
 */
export class TrackView {
  private readonly elements = new Set<MediaElement>();
  /** Whether each element intersects the viewport, as the IntersectionObserver last said. */
  private readonly intersecting = new WeakMap<Element, boolean>();
  private readonly resizeObserver: ResizeObserver | null;
  private readonly intersectionObserver: IntersectionObserver | null;
  private readonly stopWatching: () => void;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** The last report sent (or being sent), as a key. */
  private sent: string | null = null;
  private sending = false;
  private closed = false;

  constructor(
    private readonly track: MediaStreamTrack,
    private readonly report: (view: TrackViewReport) => Promise<unknown>,
  ) {
    const scope = globalThis as { ResizeObserver?: typeof ResizeObserver; IntersectionObserver?: typeof IntersectionObserver };
    this.resizeObserver = scope.ResizeObserver ? new scope.ResizeObserver(() => this.schedule()) : null;
    this.intersectionObserver = scope.IntersectionObserver
      ? new scope.IntersectionObserver((entries) => {
          for (const entry of entries) this.intersecting.set(entry.target, entry.isIntersecting);
          this.schedule();
        })
      : null;
    this.stopWatching = watchAttachments(track, () => this.follow());
    this.follow();
  }

  /**
   * The server was told the track is not visible (or is being told): its consumer is paused, and
   * no media of it arrives until the track is shown again.
   */
  get hidden(): boolean {
    return this.sent?.startsWith('false:') ?? false;
  }

  /** Where the track is shown now: the largest visible element's size in device pixels. */
  current(): TrackViewReport {
    const ratio = (globalThis as { devicePixelRatio?: number }).devicePixelRatio ?? 1;
    let width = 0;
    let height = 0;
    for (const element of this.elements) {
      if (this.intersecting.get(element) === false || !element.isConnected) continue;
      const w = Math.round(element.clientWidth * ratio);
      const h = Math.round(element.clientHeight * ratio);
      if (w === 0 || h === 0) continue;
      width = Math.max(width, w);
      height = Math.max(height, h);
    }
    return { visible: width > 0 && height > 0, width, height };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatching();
    this.resizeObserver?.disconnect();
    this.intersectionObserver?.disconnect();
    if (this.timer) clearTimeout(this.timer);
  }

  /** Observes the elements the track is attached to now, and no others. */
  private follow(): void {
    if (this.closed || !this.resizeObserver || !this.intersectionObserver) return;
    const now = new Set(attachedElements(this.track));
    for (const element of this.elements) {
      if (now.has(element)) continue;
      this.elements.delete(element);
      this.resizeObserver.unobserve(element);
      this.intersectionObserver.unobserve(element);
    }
    for (const element of now) {
      if (this.elements.has(element)) continue;
      this.elements.add(element);
      this.resizeObserver.observe(element);
      this.intersectionObserver.observe(element);
    }
    // Attached once: from now on a track without elements is reported as not visible.
    if (now.size > 0 || this.sent !== null) this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.flush();
    }, REPORT_DEBOUNCE_MS);
  }

  private async flush(): Promise<void> {
    if (this.closed || this.sending) return;
    const view = this.current();
    const key = `${view.visible}:${view.width}x${view.height}`;
    if (key === this.sent) return;
    this.sent = key;
    this.sending = true;
    try {
      await this.report(view);
    } catch {
      // The consumer went (its producer closed) or the session ended: nothing to follow any more.
      // A late answer leaves the report as sent; the next change sends again.
    } finally {
      this.sending = false;
    }
    // Changed while the last report was on its way.
    const latest = this.current();
    if (`${latest.visible}:${latest.width}x${latest.height}` !== this.sent) this.schedule();
  }
}
