/** Origin allow-list shared by express CORS and the Socket.IO handshake. */
export function originChecker(allowed: readonly string[]): (origin: string | undefined) => boolean {
  const any = allowed.includes('*');
  const set = new Set(allowed.map((o) => o.toLowerCase()));
  // Requests without Origin come from non-browser clients (bots, servers): CORS does not apply.
  return (origin) => origin === undefined || any || set.has(origin.toLowerCase());
}
