import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, fetch } from 'undici';
import { asError, failureReason } from '../support/failure-reason.ts';
import { safelyDecoded } from './http.ts';
import type { ConnectResult } from './store.ts';

/**
 * Where the emulator may POST a token's `source_callback_url` when its connect flow completes. Context.IO made
 * that call from its own servers; the emulator makes it from the machine it runs on (with `npm start`, the
 * gateway's), for whoever created the token and submitted its page: anyone who reaches the connect page of an
 * emulator open to other machines. So the call never goes to a link-local address (169.254.169.254 holds
 * cloud credentials), the unspecified one or the metadata services that sit elsewhere, nor, from an emulator
 * open to other machines, to this machine itself (loopback). Names are checked as they resolve, at connect
 * time (a name re-pointed after a check would otherwise pass), and redirects are not followed. An emulator
 * answering loopback only (one developer's machine) may call an app on localhost, which is what it is for.
 * Private networks (10/8, 192.168/16…) stay reachable: a shared development emulator calls the developers'
 * machines there.
 */
export class SourceCallbacks {
  readonly #blocked: BlockList;
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  readonly #onFailed: ((error: Error) => void) | undefined;
  /** The calls under way, stopped by close(). */
  readonly #inFlight = new Set<AbortController>();
  /** Set by the first close(), which later ones wait for: undici refuses to close an agent twice. */
  #closing: Promise<void> | undefined;

  /**
   * `timeoutMs`: how long a call may take, connection included (5 s unless given); `onFailed`: told of each
   * call of `notify` that failed, unless the emulator was closing.
   */
  constructor(options: { allowLoopback: boolean; timeoutMs?: number; onFailed?: (error: Error) => void }) {
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#onFailed = options.onFailed;
    const blocked = new BlockList();
    blocked.addSubnet('0.0.0.0', 8, 'ipv4');
    blocked.addSubnet('169.254.0.0', 16, 'ipv4');
    blocked.addAddress('::', 'ipv6');
    blocked.addSubnet('fe80::', 10, 'ipv6');
    // Cloud metadata services outside link-local: AWS's over IPv6, Alibaba Cloud's.
    blocked.addAddress('fd00:ec2::254', 'ipv6');
    blocked.addAddress('100.100.100.200', 'ipv4');
    if (!options.allowLoopback) {
      blocked.addSubnet('127.0.0.0', 8, 'ipv4');
      blocked.addAddress('::1', 'ipv6');
    }
    this.#blocked = blocked;
    this.#agent = new Agent({ connect: { lookup: this.#lookup } });
  }

  /** Whether the call may go to this IP address (an IPv4 address mapped into IPv6 is checked as itself). */
  allows(address: string): boolean {
    const mapped = ipv4MappedIn(address);
    if (mapped !== undefined) return !this.#blocked.check(mapped, 'ipv4');
    const family = isIP(address);
    return family !== 0 && !this.#blocked.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }

  /**
   * POSTs `body` to `target`, unless it names an address refused above. Fails, saying why with the target's
   * host only (its path and query may hold the app's secrets), on a refusal, an error, no answer in time or an
   * answer other than 2xx. `signal`: the caller's, to stop it sooner (the emulator closing).
   */
  async post(target: string, body: URLSearchParams, signal: AbortSignal): Promise<void> {
    const url = new URL(target);
    // A user and password in the URL (an app's webhook behind Basic authentication) are sent as an HTTP client
    // sends them: fetch refuses a URL that carries them, in a message quoting it whole, password included.
    const headers: Record<string, string> = {};
    if (url.username !== '' || url.password !== '') {
      headers['authorization'] = `Basic ${Buffer.from(`${safelyDecoded(url.username)}:${safelyDecoded(url.password)}`).toString('base64')}`;
      url.username = '';
      url.password = '';
    }
    // An address in the URL is connected to without a lookup: checked here.
    const address = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(address) !== 0 && !this.allows(address)) throw new Error(`source callback to ${url.host} refused: ${REFUSED}`);
    let status: number;
    const deadline = AbortSignal.timeout(this.#timeoutMs);
    try {
      const response = await fetch(url, { method: 'POST', body, headers, signal: AbortSignal.any([signal, deadline]), redirect: 'manual', dispatcher: this.#agent });
      await response.body?.cancel();
      status = response.status;
    } catch (error) {
      // Said as what happened: undici's own words for it were "This operation was aborted".
      const cause = deadline.aborted
        ? `no answer within ${this.#timeoutMs / 1000} s`
        : failureReason(error);
      throw new Error(`source callback to ${url.host} failed: ${cause}`);
    }
    if (status >= 300) throw new Error(`source callback to ${url.host} answered ${status}${status < 400 ? ' (redirects are not followed)' : ''}`);
  }

  /**
   * Tells the token's `source_callback_url`, if it has one, that its flow completed, as Context.IO did: fire
   * and forget, since the app's endpoint being down must not affect the flow. Nothing once closing.
   */
  notify(result: ConnectResult): void {
    const target = result.sourceCallbackUrl;
    if (!target || this.#closing) return;
    const controller = new AbortController();
    this.#inFlight.add(controller);
    const body = new URLSearchParams({
      account_id: result.account.id,
      source_label: result.source.label,
      token: result.token.token,
      status: result.source.status ?? 'OK',
      email: result.source.email ?? '',
    });
    this.post(target, body, controller.signal)
      .catch((error: unknown) => {
        if (!this.#closing) this.#onFailed?.(asError(error));
      })
      .finally(() => this.#inFlight.delete(controller));
  }

  /** Stops the calls under way (their failures said to nobody) and closes the connections. */
  close(): Promise<void> {
    if (!this.#closing) {
      for (const controller of this.#inFlight) controller.abort();
      this.#closing = this.#agent.close();
    }
    return this.#closing;
  }

  /** `dns.lookup` keeping only the addresses a callback may reach; none left is a lookup error. */
  readonly #lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    dnsLookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      const allowed = addresses.filter((entry) => this.allows(entry.address));
      if (allowed.length === 0) {
        return callback(Object.assign(new Error(`${hostname} resolves to no address it may reach: ${REFUSED}`), { code: 'ENOTFOUND' }), []);
      }
      if (options.all) return callback(null, allowed);
      return callback(null, allowed[0]!.address, allowed[0]!.family);
    });
  };
}

const REFUSED = 'link-local and unspecified addresses are never called, nor loopback by an emulator open to other machines';

/** The IPv4 address inside `::ffff:a.b.c.d` or `::ffff:xxxx:xxxx`, if that is what `address` is. */
function ipv4MappedIn(address: string): string | undefined {
  const dotted = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (dotted) return dotted[1];
  const hex = /^(?:0{0,4}:){0,4}:?(?:0{0,4}:)?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (!hex) return undefined;
  const high = parseInt(hex[1]!, 16);
  const low = parseInt(hex[2]!, 16);
  return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
}
