import type { IceServer } from '../../../protocol/events.js';
import type { Config } from '../../../config/index.js';
import type { LiveRooms } from '../../cluster/LiveRooms.js';
import type { TokenService } from '../../auth/TokenService.js';
import type { Logger } from '../../logger.js';
import type { RoomManager } from '../../rooms/RoomManager.js';
import type { SignalingGateway } from '../../signaling/SignalingGateway.js';
import type { Store } from '../../store/Store.js';
import type { WebhookDispatcher } from '../../webhooks/WebhookDispatcher.js';
import type { ApiRateLimits } from './rateLimits.js';

/** What the API handlers use: the services createServer built before mounting the API. */
export interface ApiContext {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly store: Store;
  readonly tokens: TokenService;
  /** This node's rooms (settings resolution; live rooms through liveRooms). */
  readonly rooms: RoomManager;
  /**
   * Live rooms wherever they run (ClusterLiveRooms in a cluster: the owner node acts). Absent:
   * this node's own rooms (LocalLiveRooms over `rooms`), the single-node server.
   */
  readonly liveRooms?: LiveRooms;
  readonly gateway: SignalingGateway;
  readonly webhooks: WebhookDispatcher;
  /** ICE servers (with fresh TURN credentials) for a user; the same function the gateway uses. */
  iceServers(userId: string): IceServer[];
  readonly rateLimits?: Partial<ApiRateLimits>;
}
