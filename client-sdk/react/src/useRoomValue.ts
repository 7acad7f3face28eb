import type { Room, RoomEvent, RoomEventCallbacks } from '@switchboard/client';
import { useEffect, useState } from 'react';

/**
 * A value read from the Room, read again (and re-rendered) whenever one of `events` fires. Read
 * once more when subscribing: the room may have changed between render and effect. A value is
 * only returned for the Room it was read from: when `room` changes (a provider that connected a
 * new Room), the first render reads the new one instead of returning the old one's (which would
 * say, for one render, that a Room still connecting is connected).
 */
export function useRoomValue<T>(room: Room, events: readonly RoomEvent[], read: (room: Room) => T, deps: readonly unknown[] = []): T {
  const [stored, setStored] = useState(() => ({ room, value: read(room) }));
  const eventsKey = events.join(',');
  useEffect(() => {
    const update = () => setStored({ room, value: read(room) });
    update();
    const listener = update as RoomEventCallbacks[keyof RoomEventCallbacks];
    for (const event of events) room.on(event, listener);
    return () => {
      for (const event of events) room.off(event, listener);
    };
    // `read` is a fresh closure each render: what it depends on is the room, the events and `deps`.
  }, [room, eventsKey, ...deps]);
  return stored.room === room ? stored.value : read(room);
}
