/**
 * `npm run token -- [--accounts <id,...>] [--admin] [--sub <subject>] [--expires 1h]`, with at least one of
 * the first three: mints a development token the gateway accepts (with `--sub` alone, one with no account
 * yet: a new user's, who may start a connect flow), signed HS256 with AUTH_JWT_SECRET (with AUTH_ISSUER/AUTH_AUDIENCE as `iss`/
 * `aud` when set), and prints only the token, so `TOKEN=$(npm run -s token -- --admin)` works.
 */
import { parseArgs } from 'node:util';
import { decodeJwt, SignJWT } from 'jose';
import { MIN_SECRET_LENGTH } from '../src/auth/config.ts';
import { ADMIN_SCOPE } from '../src/auth/index.ts';

const USAGE =
  'usage: npm run token -- [--accounts <id,...>] [--admin] [--sub <subject>] [--expires 1h], with at least one of the first three (--sub alone: a user with no account yet)';

function fail(message: string): never {
  console.error(`token: ${message}`);
  process.exit(1);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        accounts: { type: 'string' },
        admin: { type: 'boolean', default: false },
        expires: { type: 'string', default: '1h' },
        sub: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    fail(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const secret = process.env['AUTH_JWT_SECRET']?.trim();
  if (!secret) fail('AUTH_JWT_SECRET is not set: it is the secret the gateway verifies HS256 tokens with');
  // The gateway refuses to start with a shorter one: a token signed with it would verify nowhere.
  if (Buffer.byteLength(secret) < MIN_SECRET_LENGTH) {
    fail(`AUTH_JWT_SECRET must be at least ${MIN_SECRET_LENGTH} bytes long, as the gateway requires (e.g. openssl rand -base64 48)`);
  }
  const accounts = values.accounts
    ?.split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
  if (!values.admin && (accounts === undefined || accounts.length === 0) && !values.sub) {
    fail(`give --admin, --accounts with at least one id, or --sub for a user with no account yet\n${USAGE}`);
  }

  const claims: Record<string, unknown> = {};
  if (values.admin) claims['scope'] = ADMIN_SCOPE;
  if (accounts !== undefined && accounts.length > 0) claims['accounts'] = accounts;
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setIssuedAt();
  const issuer = process.env['AUTH_ISSUER']?.trim();
  // The first audience of a list: a token is minted for this gateway, and any one listed names it.
  const audience = process.env['AUTH_AUDIENCE']?.split(',')[0]?.trim();
  if (issuer) jwt.setIssuer(issuer);
  if (audience) jwt.setAudience(audience);
  if (values.sub) jwt.setSubject(values.sub);
  try {
    jwt.setExpirationTime(values.expires);
  } catch {
    fail(`--expires must be a duration such as 15m, 1h or 7d (got "${values.expires}")`);
  }
  const token = await jwt.sign(new TextEncoder().encode(secret));
  // jose takes `0s`, `-1h` and `1h ago` too: a token expired as it is issued, which the gateway refuses at once.
  const { iat = 0, exp = 0 } = decodeJwt(token);
  if (exp <= iat) fail(`--expires must be a positive duration such as 15m, 1h or 7d (got "${values.expires}": the token would be expired when issued)`);
  console.log(token);
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
