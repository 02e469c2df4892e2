import FindMyWay from 'find-my-way';

/** The methods an emulator route may answer. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

/** A request matched to a route: its handler, its decoded path parameters and its query. */
export interface RouteMatch<H> {
  handler: H;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The request path, without the query. */
  path: string;
}

/** A request no route takes: the answer to give, in the emulator's own error shape. */
export interface RouteMiss {
  status: 404 | 405;
  body: unknown;
  /** `allow` on a 405, listing the methods the path does take. */
  headers: Record<string, string>;
}

/** The bodies of the router's refusals, so each emulator answers in its vendor's error shape. */
export interface RouterOptions {
  notFound(method: string, path: string): unknown;
  methodNotAllowed(method: string, path: string, allowed: readonly HttpMethod[]): unknown;
}

/**
 * Method and path routing on find-my-way (`/crm/v3/objects/:objectType/:id`); static
 * segments win over parameters. Handlers are of whatever type the emulator calls them
 * with: the router only finds them.
 */
export class Router<H> {
  private readonly tree = FindMyWay({ ignoreTrailingSlash: true });
  private readonly methods = new Set<HttpMethod>();

  constructor(private readonly options: RouterOptions) {}

  /** Adds a route; `path` takes `:name` parameters. */
  on(method: HttpMethod | readonly HttpMethod[], path: string, handler: H): this {
    const methods = typeof method === 'string' ? [method] : [...method];
    for (const m of methods) this.methods.add(m);
    // The handler rides in find-my-way's store (boxed: a falsy store reads back as null).
    this.tree.on(methods, path, () => undefined, { handler });
    return this;
  }

  /** Finds the route for a request line, or the 404 / 405 to answer instead. */
  match(method: string, url: string): RouteMatch<H> | RouteMiss {
    const parsed = new URL(url, 'http://127.0.0.1');
    const path = parsed.pathname;
    const found = this.find(method, path);
    if (found !== undefined) {
      return { handler: found.store.handler, params: { ...found.params }, query: parsed.searchParams, path };
    }
    const allowed = METHODS.filter((m) => this.find(m, path) !== undefined);
    if (allowed.length === 0) return { status: 404, body: this.options.notFound(method, path), headers: {} };
    return { status: 405, body: this.options.methodNotAllowed(method, path, allowed), headers: { allow: allowed.join(', ') } };
  }

  private find(method: string, path: string): { store: { handler: H }; params: Record<string, string> } | undefined {
    if (!this.methods.has(method as HttpMethod)) return undefined;
    const found = this.tree.find(method as HttpMethod, path);
    if (found === null) return undefined;
    return { store: found.store as { handler: H }, params: found.params as Record<string, string> };
  }
}
