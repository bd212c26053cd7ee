/**
 * `npm start` runs in production unless told otherwise: `NODE_ENV` unset (or blank) becomes `production`.
 * graphql-js reads it once, when it is first imported, and outside production checks every `instanceof`
 * of its type predicates for a second copy of the library (several per field resolved: ~3% of a fan-out's
 * CPU, bench/README.md). So this module is start.ts's first import, evaluated before anything imports
 * graphql. The gateway's own settings only look for `development` (src/config/index.ts).
 * Trimmed, as every setting is (src/config/index.ts reads it so): graphql-js and Apollo compare it exactly, and
 * `production` with a stray newline from a `.env` or a secret store would run them in development mode.
 */
process.env['NODE_ENV'] = process.env['NODE_ENV']?.trim() || 'production';
