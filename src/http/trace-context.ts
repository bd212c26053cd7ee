import type { IncomingMessage } from 'node:http';
import type { TraceContext } from '../upstream/cancellation.ts';

/**
 * A request's W3C Trace Context (https://www.w3.org/TR/trace-context/): read and checked here, passed on unchanged with
 * the operation's upstream calls (`OperationScope.trace`), its trace id in the operation's log line.
 */

/**
 * The W3C trace context a request came with, when its `traceparent` is valid (https://www.w3.org/TR/trace-context/,
 * version 00; a later version read by its first four fields, as the recommendation asks), with its `tracestate` when
 * that is a valid list of at most 32 members, kept to 512 characters by dropping whole members (see `tracestateOf`). An
 * invalid `traceparent` is dropped with its `tracestate`, as the recommendation has it: a trace then starts afresh
 * wherever it is picked up, and nothing malformed is written to a log line or sent upstream.
 */
export function traceContextOf(req: IncomingMessage): TraceContext | undefined {
  // Node joins a header sent twice with ", ": two `traceparent`s, which the recommendation calls invalid, are so.
  const { traceparent, tracestate: tracestateHeader } = req.headers;
  if (typeof traceparent !== 'string' || !validTraceparent(traceparent)) return undefined;
  // Several `tracestate` headers make one list, as Node joins them.
  const tracestate = tracestateOf(typeof tracestateHeader === 'string' ? tracestateHeader : undefined);
  return tracestate === undefined ? { traceparent } : { traceparent, tracestate };
}

/** The 32 hexadecimal digits of a valid `traceparent`'s trace id: what the operation's log line calls `traceId`. */
export function traceIdOf(trace: TraceContext): string {
  return trace.traceparent.slice(3, 35);
}

// Version, trace id, parent id and flags, lower-case hexadecimal; a version after 00 may add fields after a dash,
// taken as visible ASCII only: they are sent upstream as they came, where a tab or a byte beyond ASCII (Node reads a
// header as Latin-1) could fail the call.
const TRACEPARENT = /^([\da-f]{2})-([\da-f]{32})-([\da-f]{16})-[\da-f]{2}(-[!-~]{0,200})?$/;

function validTraceparent(value: string): boolean {
  const fields = TRACEPARENT.exec(value);
  if (!fields) return false;
  const [, version, traceId, parentId, more] = fields;
  // Version ff is forbidden; 00 has exactly four fields. All-zero ids are invalid: they name no trace or span.
  if (version === 'ff' || (version === '00' && more !== undefined)) return false;
  return !/^0+$/.test(traceId!) && !/^0+$/.test(parentId!);
}

// A member: a key, `=`, and a value of printable ASCII but `,` and `=`, not ending in a space. The key is Trace Context
// Level 2's: a lower-case letter or digit, then up to 255 of those, `_`, `-`, `*`, `/` and `@`. Level 1's keys (a
// letter first, or `tenant@system`) are all of that form, and a list holding one of the keys Level 2 added (`1vendor`,
// `a@b@c`) would otherwise be dropped whole. Members are separated by commas with optional spaces or tabs; empty ones
// are allowed.
const TRACESTATE_MEMBER = /^[a-z\d][a-z\d_*/@-]{0,255}=[ -+\--<>-~]{0,255}[!-+\--<>-~]$/;

/** How many characters of `tracestate` are passed on: what the recommendation asks vendors to keep at least. */
const TRACESTATE_KEPT_CHARACTERS = 512;
/** A member longer than this goes first when `tracestate` is cut, as the recommendation asks. */
const TRACESTATE_LONG_MEMBER = 128;

function tracestateOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const members = header.split(',').map((member) => member.replace(/^[ \t]+|[ \t]+$/g, '')).filter((member) => member !== '');
  if (members.length === 0 || members.length > 32 || !members.every((member) => TRACESTATE_MEMBER.test(member))) return undefined;
  const keys = new Set(members.map((member) => member.slice(0, member.indexOf('='))));
  if (keys.size !== members.length) return undefined;
  // Past the length kept, whole members go, as the recommendation orders it: those over 128 characters first (one
  // would otherwise push out several short ones after it), then the others from the end, the first ones being the
  // most recent vendors'. Only as many as the length needs.
  while (members.join(',').length > TRACESTATE_KEPT_CHARACTERS) {
    const long = members.findLastIndex((member) => member.length > TRACESTATE_LONG_MEMBER);
    members.splice(long === -1 ? members.length - 1 : long, 1);
  }
  return members.length === 0 ? undefined : members.join(',');
}
