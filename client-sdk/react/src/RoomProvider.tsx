import { Room, type Credentials, type RoomOptions, type SwitchboardError } from '@switchboard/client';
import { createContext, useContext, useEffect, useRef, useState, type ReactElement, type ReactNode } from 'react';

const RoomContext = createContext<Room | null>(null);

/** Props of RoomProvider: a Room of the app's (`room`), or what to create and connect one with (`serverUrl`, `token`). */
export interface RoomProviderProps {
  /** A Room the app created (and connects and leaves itself); the provider only hands it down. */
  room?: Room;
  /** Without `room`: the server to connect to. */
  serverUrl?: string;
  /** Without `room`: the join token (or anonymous credentials). */
  token?: Credentials;
  /** Without `room`: connect while true (default), leave when it turns false or the provider unmounts. */
  connect?: boolean;
  /** Without `room`: the options of the Room the provider creates (read when it creates one). */
  options?: RoomOptions;
  /** The provider's own Room connected. */
  onConnected?: (room: Room) => void;
  /** The provider's own Room failed to connect. */
  onError?: (error: SwitchboardError) => void;
  children?: ReactNode;
}

/**
 * Hands a Room down to the hooks (LiveKit's LiveKitRoom shapes): either `room`, or `serverUrl`
 * and `token`, with which the provider creates a Room, connects it, and leaves it on unmount (or
 * when `connect` turns false, `serverUrl` or `token` change: a Room connects once, so each
 * connection is a new Room).
 */
export function RoomProvider(props: RoomProviderProps): ReactElement {
  const { serverUrl, token, connect = true } = props;
  const ownsRoom = props.room === undefined;
  const latest = useRef(props);
  latest.current = props;
  const [ownRoom, setOwnRoom] = useState<Room | null>(() => (ownsRoom ? new Room(props.options) : null));
  /** Rooms of ours that connect() was called on: a Room connects once. */
  const used = useRef(new WeakSet<Room>());
  /**
   * The leave of the last Room of ours: the next one connects once it is done, so the server
   * never sees the same identity's old join land after the new one (StrictMode's second mount,
   * new props), which would replace the new connection.
   */
  const lastLeave = useRef<Promise<void>>(Promise.resolve());

  useEffect(() => {
    if (!ownsRoom) return;
    if (!ownRoom || used.current.has(ownRoom)) {
      // The last one connected (and was left), or none yet: a fresh Room, connected when this runs again.
      if (connect && serverUrl && token) setOwnRoom(new Room(latest.current.options));
      return;
    }
    if (!connect || !serverUrl || !token) return;
    const room = ownRoom;
    used.current.add(room);
    // A Room left before its connect settled (unmounted, StrictMode's second mount, new props) reports nothing.
    let left = false;
    void lastLeave.current.then(() => {
      if (left) return;
      room.connect(serverUrl, token).then(
        () => {
          if (!left) latest.current.onConnected?.(room);
        },
        (error: SwitchboardError) => {
          if (!left) latest.current.onError?.(error);
        },
      );
    });
    return () => {
      left = true;
      lastLeave.current = room.leave().catch(() => undefined);
    };
  }, [ownsRoom, ownRoom, serverUrl, token, connect]);

  const room = props.room ?? ownRoom;
  return <RoomContext.Provider value={room}>{props.children}</RoomContext.Provider>;
}

/** The Room of the nearest RoomProvider; throws outside one. */
export function useRoom(): Room {
  const room = useContext(RoomContext);
  if (!room) throw new Error('useRoom: no Room here (render this inside a <RoomProvider>)');
  return room;
}

/** The Room passed, else the provider's (what every hook taking an optional room uses). */
export function useRoomOrContext(room?: Room): Room {
  const provided = useContext(RoomContext);
  const chosen = room ?? provided;
  if (!chosen) throw new Error('@switchboard/react: no Room (pass one, or render this inside a <RoomProvider>)');
  return chosen;
}
