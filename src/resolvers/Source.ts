import type { SourceResolvers, SourceStatus } from '../generated/graphql.ts';
import { SOURCE_STATUSES } from '../upstream/types.ts';

const KNOWN_STATUSES: ReadonlySet<string> = new Set<SourceStatus>(SOURCE_STATUSES);

export const Source: SourceResolvers = {
  label: (s) => s.label,
  email: (s) => s.email ?? null,
  username: (s) => s.username ?? null,
  server: (s) => s.server ?? null,
  port: (s) => s.port ?? null,
  useSsl: (s) => s.use_ssl ?? null,
  type: (s) => s.type ?? null,
  // A status this gateway does not know must not break the response it appears in.
  status: (s) => (s.status === undefined ? null : KNOWN_STATUSES.has(s.status) ? (s.status as SourceStatus) : 'UNKNOWN'),
  // `""` says nothing either.
  statusMessage: (s) => s.status_message || null,
  syncPeriod: (s) => s.sync_period ?? null,
  authenticationType: (s) => s.authentication_type ?? null,
};
