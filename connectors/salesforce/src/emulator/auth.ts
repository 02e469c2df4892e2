/**
 * Sessions and the OAuth 2.0 JWT bearer flow. An access token is shaped as Salesforce's
 * are (`<org id>!<opaque>`); a request with no token, an unknown one or an expired one is
 * answered 401 INVALID_SESSION_ID. `POST /services/oauth2/token` with grant type
 * `urn:ietf:params:oauth:grant-type:jwt-bearer` verifies the assertion's RS256 signature
 * against the connected app's certificate and its claims: `iss` the consumer key, `sub` a
 * user of the org, `aud` the login server (https://login.salesforce.com, or the address it was
 * posted to), `exp` not passed. Errors are OAuth's:
 * 400 `{ error, error_description }`.
 */
import { createPublicKey, randomBytes, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { ApiError } from './errors.js';

export const ORG_ID = '00D5g000004EMULAAA';
export const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

/** The connected app the JWT bearer flow authorises, and the users it may act for. */
export interface JwtApp {
  /** The consumer key: the assertion's `iss`. */
  clientId: string;
  /** The certificate (PEM) uploaded to the connected app, or its public key. */
  certificate: string;
  /** Usernames the app is pre-authorised for: the assertion's `sub`. */
  usernames: string[];
  /** The `aud` the assertion must carry; https://login.salesforce.com by default. */
  audience?: string;
}

interface Session {
  username: string;
  expiresAt: number;
}

/** An OAuth error answer. */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
  ) {
    super(description);
  }
}

function b64url(text: string): Buffer {
  return Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
}

export class Sessions {
  private readonly sessions = new Map<string, Session>();
  private readonly key: KeyObject | undefined;

  constructor(
    sandboxToken: string,
    private readonly app: JwtApp | undefined,
    private ttlMs: number,
  ) {
    this.sessions.set(sandboxToken, { username: 'sandbox@outflow.emulator', expiresAt: Number.POSITIVE_INFINITY });
    if (app !== undefined) {
      this.key = app.certificate.includes('BEGIN CERTIFICATE') ? new X509Certificate(app.certificate).publicKey : createPublicKey(app.certificate);
    }
  }

  /** Issues a new access token for `username`. */
  issue(username: string): string {
    const token = `${ORG_ID.slice(0, 15)}!AQ${randomBytes(24).toString('hex')}`;
    this.sessions.set(token, { username, expiresAt: Date.now() + this.ttlMs });
    return token;
  }

  /** Ends every session (the sandbox token's too), as a password reset or a session timeout would. */
  expireAll(): void {
    for (const s of this.sessions.values()) s.expiresAt = 0;
  }

  /** The user of a request's `Authorization: Bearer` (or `OAuth`) token, or the 401 Salesforce answers. */
  check(header: string | undefined): string {
    const token = /^(Bearer|OAuth)\s+(\S+)$/i.exec(header ?? '')?.[2];
    const session = token === undefined ? undefined : this.sessions.get(token);
    if (session === undefined || session.expiresAt <= Date.now()) throw new ApiError(401, 'INVALID_SESSION_ID', 'Session expired or invalid');
    return session.username;
  }

  /** Answers `POST /services/oauth2/token`, or throws the OAuth error. */
  token(form: URLSearchParams, instanceUrl: string): Record<string, unknown> {
    const grant = form.get('grant_type');
    if (grant !== JWT_GRANT) throw new OAuthError('unsupported_grant_type', 'grant type not supported');
    const app = this.app;
    if (app === undefined || this.key === undefined) throw new OAuthError('invalid_client_id', 'client identifier invalid');
    const assertion = form.get('assertion') ?? '';
    const parts = assertion.split('.');
    if (parts.length !== 3) throw new OAuthError('invalid_grant', 'invalid assertion');
    let header: { alg?: unknown };
    let claims: { iss?: unknown; sub?: unknown; aud?: unknown; exp?: unknown };
    try {
      header = JSON.parse(b64url(parts[0]!).toString('utf8')) as typeof header;
      claims = JSON.parse(b64url(parts[1]!).toString('utf8')) as typeof claims;
    } catch {
      throw new OAuthError('invalid_grant', 'invalid assertion');
    }
    if (header.alg !== 'RS256') throw new OAuthError('invalid_grant', 'invalid assertion: the signing algorithm must be RS256');
    const signed = verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`), this.key, b64url(parts[2]!));
    if (!signed) throw new OAuthError('invalid_grant', 'invalid assertion: the signature does not verify with the connected app certificate');
    if (claims.iss !== app.clientId) throw new OAuthError('invalid_client_id', 'client identifier invalid');
    const audience = app.audience ?? 'https://login.salesforce.com';
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    // The login server the assertion was posted to is taken as well (a My Domain login URL).
    if (!aud.includes(audience) && !aud.includes(instanceUrl)) throw new OAuthError('invalid_grant', `audience is invalid (expected ${audience})`);
    if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) throw new OAuthError('invalid_grant', 'invalid assertion: expired (exp)');
    if (typeof claims.sub !== 'string' || !app.usernames.includes(claims.sub)) throw new OAuthError('invalid_grant', "user hasn't approved this consumer");
    const token = this.issue(claims.sub);
    return {
      access_token: token,
      scope: 'api',
      instance_url: instanceUrl,
      id: `${instanceUrl}/id/${ORG_ID}/0055g00000EMULAAA`,
      token_type: 'Bearer',
      issued_at: String(Date.now()),
    };
  }

  setTtl(ms: number): void {
    this.ttlMs = ms;
  }
}
