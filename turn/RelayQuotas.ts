/**
 * The quotas every relay worker shares (TURN_WORKERS): allocations in total
 * (TURN_MAX_ALLOCATIONS), per user (TURN_MAX_ALLOCATIONS_PER_USER) and open TCP/TLS
 * connections per client IP (TURN_MAX_CONNECTIONS_PER_IP). A user's ice_servers name one
 * worker's port, but any client may send to any worker, so a quota counted per worker would
 * be N times the setting.
 *
 * The counts live in one SharedArrayBuffer: a part per worker (its allocations, and tables of
 * counts by user and by client IP), which only that worker writes, and one lock word. A check
 * sums a key's count over every worker's part under the lock; the parts are small hash tables
 * (open addressing on a 64-bit hash of the key, linear probing, deletion by backward shift),
 * so a check costs a few probes per worker. Checks happen per allocation and per connection,
 * never per packet.
 *
 * Why a part per worker: a worker that dies takes its allocations and connections with it;
 * the server then clears that worker's part (clearWorker) and nothing it counted leaks. The
 * lock names its holder, so a worker that died holding it cannot lock the others out.
 */
import { createHash } from 'node:crypto';

/** What reserveAllocation answers. */
export type AllocationVerdict = 'ok' | 'quota_total' | 'quota_user';

/** Int32 cells of a table slot: the key's hash (two cells, 0/0 = empty slot) and its count. */
const SLOT_CELLS = 3;
/** Cells before a table's slots: the number of keys it holds. */
const TABLE_HEADER_CELLS = 1;
/**
 * Keys one worker's table holds at most: live allocations are bounded by the relay ports of
 * the relay address (at most 65,536, shared by the workers), so a larger TURN_MAX_ALLOCATIONS
 * only costs memory. A table that is full refuses new keys (486, or the connection refused).
 */
const MAX_KEYS_PER_TABLE = 65_536;
/** Cell 0: the lock (0 = free, else the holder's worker index + 1). */
const LOCK = 0;
const HEADER_CELLS = 1;

/** Slots per table: a power of two, at least twice the number of keys it holds (so probe runs stay short and one slot is always empty). */
function slotsFor(maxKeys: number): number {
  let slots = 8;
  while (slots < Math.min(maxKeys, MAX_KEYS_PER_TABLE) * 2) slots *= 2;
  return slots;
}

/** A 64-bit hash of `key` as two non-zero-together int32s. */
function hashKey(key: string): [number, number] {
  const digest = createHash('sha1').update(key).digest();
  const high = digest.readInt32LE(0);
  const low = digest.readInt32LE(4);
  return high === 0 && low === 0 ? [0, 1] : [high, low];
}

/** The layout of the shared buffer for `workers` workers, each counting at most `maxKeys` users and `maxKeys` client IPs. */
interface Layout {
  workers: number;
  slots: number;
  /** Cells of one worker's part: its allocation count, then the user table, then the IP table. */
  partCells: number;
  /** Cells of one table: its key count, then its slots. */
  tableCells: number;
}

export interface RelayQuotaLimits {
  maxAllocations: number;
  maxAllocationsPerUser: number;
  maxConnectionsPerIp: number;
}

export class RelayQuotas {
  /**
   * A buffer for `workers` relay workers. `maxKeys` bounds the distinct users and client IPs one
   * worker counts at once (TURN_MAX_ALLOCATIONS: a user counted has an allocation, and a worker
   * holds at most that many connections).
   */
  static create(workers: number, maxKeys: number): SharedArrayBuffer {
    const { partCells } = RelayQuotas.layout(workers, maxKeys);
    return new SharedArrayBuffer((HEADER_CELLS + workers * partCells) * Int32Array.BYTES_PER_ELEMENT);
  }

  private static layout(workers: number, maxKeys: number): Layout {
    const slots = slotsFor(maxKeys);
    const tableCells = TABLE_HEADER_CELLS + slots * SLOT_CELLS;
    return { workers, slots, tableCells, partCells: 1 + 2 * tableCells };
  }

  private readonly cells: Int32Array;
  private readonly layout: Layout;

  /**
   * The view of worker `worker` (0-based) on a buffer made by create() with the same
   * `workers` and `maxKeys`.
   */
  constructor(
    buffer: SharedArrayBuffer,
    private readonly worker: number,
    workers: number,
    maxKeys: number,
    private readonly limits: RelayQuotaLimits,
  ) {
    this.layout = RelayQuotas.layout(workers, maxKeys);
    this.cells = new Int32Array(buffer);
    if (this.cells.length !== HEADER_CELLS + workers * this.layout.partCells)
      throw new Error('[RelayQuotas] the buffer does not fit the worker count and key bound');
    if (worker < 0 || worker >= workers) throw new Error(`[RelayQuotas] worker ${worker} out of 0..${workers - 1}`);
  }

  /**
   * Counts a new allocation of `userId` for this worker unless the total or the user's quota
   * (over every worker) is reached.
   */
  reserveAllocation(userId: string): AllocationVerdict {
    const hash = hashKey(`user:${userId}`);
    return this.locked(() => {
      let total = 0;
      let ofUser = 0;
      for (let w = 0; w < this.layout.workers; w++) {
        total += this.cells[this.partStart(w)] as number;
        ofUser += this.countIn(this.userTable(w), hash);
      }
      if (total >= this.limits.maxAllocations) return 'quota_total';
      if (ofUser >= this.limits.maxAllocationsPerUser) return 'quota_user';
      const own = this.partStart(this.worker);
      if (!this.add(this.userTable(this.worker), hash)) return 'quota_total';
      this.cells[own] = (this.cells[own] as number) + 1;
      return 'ok';
    });
  }

  /** An allocation counted by reserveAllocation is gone. */
  releaseAllocation(userId: string): void {
    const hash = hashKey(`user:${userId}`);
    this.locked(() => {
      const own = this.partStart(this.worker);
      if (this.remove(this.userTable(this.worker), hash)) this.cells[own] = Math.max(0, (this.cells[own] as number) - 1);
    });
  }

  /** Counts a new connection from client IP key `ipKey` (connectionCapKey) unless TURN_MAX_CONNECTIONS_PER_IP is reached over every worker. */
  admitConnection(ipKey: string): boolean {
    const hash = hashKey(`ip:${ipKey}`);
    return this.locked(() => {
      let fromIp = 0;
      for (let w = 0; w < this.layout.workers; w++) fromIp += this.countIn(this.ipTable(w), hash);
      if (fromIp >= this.limits.maxConnectionsPerIp) return false;
      return this.add(this.ipTable(this.worker), hash);
    });
  }

  /** A connection counted by admitConnection is gone. */
  releaseConnection(ipKey: string): void {
    const hash = hashKey(`ip:${ipKey}`);
    this.locked(() => void this.remove(this.ipTable(this.worker), hash));
  }

  /** Allocations counted over every worker. */
  allocations(): number {
    let total = 0;
    for (let w = 0; w < this.layout.workers; w++) total += Atomics.load(this.cells, this.partStart(w));
    return total;
  }

  /**
   * Forgets everything worker `worker` counted (it died: its allocations and connections went
   * with it), and frees the lock if that worker held it. Called by the server before the
   * worker's replacement starts.
   */
  clearWorker(worker: number): void {
    Atomics.compareExchange(this.cells, LOCK, worker + 1, 0);
    this.locked(() => {
      const start = this.partStart(worker);
      this.cells.fill(0, start, start + this.layout.partCells);
    });
  }

  private locked<T>(body: () => T): T {
    const me = this.worker + 1;
    // Critical sections are a few table probes; contention is rare (allocations and
    // connections, not packets), so spinning costs less than sleeping.
    while (Atomics.compareExchange(this.cells, LOCK, 0, me) !== 0);
    try {
      return body();
    } finally {
      Atomics.store(this.cells, LOCK, 0);
    }
  }

  private partStart(worker: number): number {
    return HEADER_CELLS + worker * this.layout.partCells;
  }

  private userTable(worker: number): number {
    return this.partStart(worker) + 1;
  }

  private ipTable(worker: number): number {
    return this.userTable(worker) + this.layout.tableCells;
  }

  /** Where slot `slot` of the table at `table` starts. */
  private slotAt(table: number, slot: number): number {
    return table + TABLE_HEADER_CELLS + slot * SLOT_CELLS;
  }

  /** The slot index where `hash` is, or the empty slot where it would go (there is always one: add keeps half the slots empty). */
  private find(table: number, [high, low]: [number, number]): { slot: number; found: boolean } {
    const { slots } = this.layout;
    const c = this.cells;
    let slot = (low >>> 0) & (slots - 1);
    for (let probes = 0; probes < slots; probes++) {
      const at = this.slotAt(table, slot);
      const h = c[at] as number;
      const l = c[at + 1] as number;
      if (h === 0 && l === 0) return { slot, found: false };
      if (h === high && l === low) return { slot, found: true };
      slot = (slot + 1) & (slots - 1);
    }
    return { slot: -1, found: false };
  }

  private countIn(table: number, hash: [number, number]): number {
    const { slot, found } = this.find(table, hash);
    return found ? (this.cells[this.slotAt(table, slot) + 2] as number) : 0;
  }

  /** Adds one to `hash`'s count in `table`; false for a new key when the table holds half its slots in keys. */
  private add(table: number, hash: [number, number]): boolean {
    const { slot, found } = this.find(table, hash);
    if (slot < 0) return false;
    const at = this.slotAt(table, slot);
    if (!found) {
      if ((this.cells[table] as number) >= this.layout.slots / 2) return false;
      this.cells[table] = (this.cells[table] as number) + 1;
      this.cells[at] = hash[0];
      this.cells[at + 1] = hash[1];
      this.cells[at + 2] = 0;
    }
    this.cells[at + 2] = (this.cells[at + 2] as number) + 1;
    return true;
  }

  /** Takes one from `hash`'s count in `table`, deleting the key at zero; false when it was not counted. */
  private remove(table: number, hash: [number, number]): boolean {
    const { slot, found } = this.find(table, hash);
    if (!found) return false;
    const c = this.cells;
    const at = this.slotAt(table, slot);
    const count = (c[at + 2] as number) - 1;
    if (count > 0) {
      c[at + 2] = count;
      return true;
    }
    // Backward-shift deletion: later keys of the probe run move up, so lookups stop at the first empty slot.
    const { slots } = this.layout;
    c[table] = (c[table] as number) - 1;
    let hole = slot;
    let next = (slot + 1) & (slots - 1);
    // At most half the slots hold keys, so an empty slot ends the run; `slots` steps bound it regardless.
    for (let steps = 0; steps < slots; steps++) {
      const nextAt = this.slotAt(table, next);
      const h = c[nextAt] as number;
      const l = c[nextAt + 1] as number;
      if (h === 0 && l === 0) break;
      const home = (l >>> 0) & (slots - 1);
      // The key at `next` may fill the hole when its home is not in (hole, next] (cyclically).
      const distanceToNext = (next - home + slots) & (slots - 1);
      const distanceToHole = (next - hole + slots) & (slots - 1);
      if (distanceToNext >= distanceToHole) {
        const holeAt = this.slotAt(table, hole);
        c[holeAt] = h;
        c[holeAt + 1] = l;
        c[holeAt + 2] = c[nextAt + 2] as number;
        hole = next;
      }
      next = (next + 1) & (slots - 1);
    }
    const holeAt = this.slotAt(table, hole);
    c[holeAt] = 0;
    c[holeAt + 1] = 0;
    c[holeAt + 2] = 0;
    return true;
  }
}
