import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import { z } from 'zod';
import { displayName, externalId, describeIssues } from '../../protocol/schemas.js';
import { AppError } from '../errors.js';

/** The package root (holds package.json), from src (tsx) or dist (built) alike. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('package.json not found above the server code');
    dir = parent;
  }
  return dir;
}

export interface FrontendOptions {
  /** Mints a demo token, or null when the dev token route is off (production). */
  devToken:
    ((request: { room: string; name: string; role: string; user?: string | undefined }) => { token: string; expires_at: string }) | null;
  roles: readonly string[];
}

/**
 * The demo page at /, its assets at /demo/, the browser SDK bundle at /sdk/ (the package @switchboard/client
 * bundled with its dependencies, scripts/build-sdk.mjs), and in dev mode
 * POST /dev/token so the demo can join without a backend of its own.
 */
export function mountFrontend(app: Express, options: FrontendOptions): void {
  const root = projectRoot();
  const demoDir = join(root, 'client-sdk', 'demo');
  const sdkDir = join(root, 'dist', 'sdk');
  app.get('/', (_req, res) => res.sendFile(join(demoDir, 'index.html')));
  app.use('/demo', express.static(demoDir, { index: false, maxAge: '1h' }));
  app.use('/sdk', express.static(sdkDir, { index: false, maxAge: '1h' }));

  if (!options.devToken) return;
  const mint = options.devToken;
  const body = z.strictObject({
    room: externalId,
    name: displayName.max(64),
    user: externalId.optional(),
    role: z.enum(options.roles as [string, ...string[]]).default('guest'),
  });
  app.post('/dev/token', (req, res, next) => {
    const parsed = body.safeParse(req.body);
    if (!parsed.success) return next(new AppError('payload_invalid', describeIssues(parsed.error)));
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json(mint(parsed.data));
  });
}
