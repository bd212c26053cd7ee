import { createRequire, syncBuiltinESMExports } from 'node:module';

/**
 * Runs `use` while the export `name` of the built-in module `specifier` is what `replace` makes of it, for the
 * modules that import it by name as well (Node's own way: `syncBuiltinESMExports`), so that the code under test
 * stays as it ships. Put back however `use` ends. Defined rather than assigned: some exports are read-only but
 * configurable (node:zlib's factories).
 */
export async function whileReplacingBuiltin<F, T>(specifier: string, name: string, replace: (original: F) => F, use: () => Promise<T>): Promise<T> {
  const exports = createRequire(import.meta.url)(specifier) as Record<string, F>;
  const original = exports[name]!;
  const set = (value: F) => {
    Object.defineProperty(exports, name, { value });
    syncBuiltinESMExports();
  };
  set(replace(original));
  try {
    return await use();
  } finally {
    set(original);
  }
}
