/** The HTTP API as the CLI calls it: JSON in and out, errors by their stable code. */
import { CliError, ExitCode, ServerError } from './CliError.js';

const REQUEST_TIMEOUT_MS = 15_000;

export interface ApiClientOptions {
  /** The server's base URL, e.g. http://localhost:8080. */
  url: string;
  /** Sent as Authorization: Bearer <credential> (tenant API secret or admin key). */
  credential: string;
}

export class ApiClient {
  constructor(private readonly options: ApiClientOptions) {}

  /** Calls the API; resolves with the JSON body (null for 204), throws ServerError or an unreachable CliError. */
  async request(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    // Appended to the URL's path: a server behind a proxy prefix (https://host/switchboard) works.
    const url = `${this.options.url.replace(/\/+$/, '')}${path}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.credential}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const reason = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new CliError(ExitCode.unreachable, `cannot reach ${this.options.url}: ${reason}`);
    }
    if (response.status === 204) return null;
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = undefined;
    }
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null | undefined)?.error;
    if (!response.ok && error && typeof error.code === 'string') {
      throw new ServerError(error.code, typeof error.message === 'string' ? error.message : '', response.status);
    }
    if (!response.ok || parsed === undefined) {
      throw new CliError(
        ExitCode.unreachable,
        `unexpected answer from ${url} (HTTP ${response.status}, ${response.headers.get('content-type') ?? 'no content type'}): is ${this.options.url} a Switchboard server?`,
      );
    }
    return parsed;
  }
}
