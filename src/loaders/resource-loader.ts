import DataLoader from 'dataloader';
import { asError } from '../support/failure-reason.ts';

/**
 * A per-request loader for a resource the upstream serves one at a time (there is no multi-id lookup):
 * every distinct key of a tick is fetched concurrently, each at most once per request, and each `load`
 * settles with its own key's request, never waiting for the others of its batch: a key that fails rejects
 * only its own `load`, and one that is slow holds back no other, nor what depends on the others.
 */
export function resourceLoader<K, V>(
  fetchOne: (key: K) => Promise<V>,
  cacheKeyFn?: (key: K) => string,
): DataLoader<K, V, K | string> {
  return new DataLoader<K, V, K | string>(
    // DataLoader settles each load with what is in its key's place once the batch's list is in: a list of the
    // values would settle every load (and the batch's cache hits) when the slowest request has answered, so
    // the list holds each key's own promise, which its load then follows.
    (keys) => Promise.resolve(keys.map((key) => ownSettling(fetchOne(key)))),
    cacheKeyFn ? { cacheKeyFn } : {},
  );
}

/** A key's request as the value in its place: DataLoader's `load` follows it, failing with an `Error`. */
function ownSettling<V>(request: Promise<V>): V {
  return request.catch((error: unknown) => {
    throw asError(error);
  }) as unknown as V;
}
