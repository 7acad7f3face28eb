/** Problems no single setting shows: what production refuses, and ranges whose ends are two settings. */
import type { ParsedSettings } from './sections/index.js';

export interface Problem {
  /** The setting the problem is reported under. */
  setting: string;
  message: string;
}

/** Production does not start on development conveniences: it needs signing keys, a TURN secret (TURN on) and named browser origins. */
export function productionRefusals({ server, http, auth, turn }: Pick<ParsedSettings, 'server' | 'http' | 'auth' | 'turn'>): Problem[] {
  if (server.nodeEnv !== 'production') return [];
  const problems: Problem[] = [];
  if (!auth.signingKeys)
    problems.push({ setting: 'SIGNING_KEYS', message: 'required when NODE_ENV=production ("kid:secret,kid:secret", secrets >= 32 bytes)' });
  if (!turn.secret && turn.enabled)
    problems.push({ setting: 'TURN_SECRET', message: 'required when NODE_ENV=production and TURN_ENABLED=true' });
  if (http.corsOrigins.includes('*')) problems.push({ setting: 'CORS_ORIGINS', message: '"*" is not allowed when NODE_ENV=production' });
  return problems;
}

/** Each port range's lower end does not exceed its upper end. */
export function portRangeProblems({ turn, sfu }: Pick<ParsedSettings, 'turn' | 'sfu'>): Problem[] {
  const problems: Problem[] = [];
  if (turn.minPort > turn.maxPort) problems.push({ setting: 'TURN_MIN_PORT', message: 'must not exceed TURN_MAX_PORT' });
  if (sfu.minPort > sfu.maxPort) problems.push({ setting: 'SFU_MIN_PORT', message: 'must not exceed SFU_MAX_PORT' });
  return problems;
}
