/** What every contender with an upstream gets: the emulator's address and key, and the same connection cap. */
export interface UpstreamSettings {
  baseUrl: string;
  consumerKey: string;
  consumerSecret: string;
  /** Upstream connections (requests in flight): the gateway's default, `UPSTREAM_MAX_IN_FLIGHT` (256). */
  maxInFlight: number;
}
