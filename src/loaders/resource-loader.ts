import DataLoader from 'dataloader';
import { asError } from '../failure-reason.ts';

/**
 * A per-request loader for a resource the upstream serves one at a time (there is no multi-id lookup):
 * every distinct key of a tick is fetched concurrently, each at most once per request, and a key that
 * fails rejects only its own `load`, never its batch (DataLoader takes an `Error` in a key's place).
 */
export function resourceLoader<K, V>(
  fetchOne: (key: K) => Promise<V>,
  cacheKeyFn?: (key: K) => string,
): DataLoader<K, V, K | string> {
  return new DataLoader<K, V, K | string>(
    (keys) => Promise.all(keys.map((key) => fetchOne(key).catch(asError))),
    cacheKeyFn ? { cacheKeyFn } : {},
  );
}
