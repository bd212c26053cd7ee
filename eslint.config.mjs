import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

const ASSERT_WITHOUT_MESSAGE =
  'Give the expectation as the message: on Node 20 under tsx a failing assert.ok/assert without one rebuilds a message ' +
  'from the source file, taking minutes (nodejs/node#52962) instead of failing at once.';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'src/generated/', 'examples/**/dist/', 'examples/**/src/gql/', 'public/', 'test-results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // On Node 20 a failing assert.ok(value) or assert(value) given no message builds one by reading the calling file
      // and tokenizing it with acorn, which under tsx's module hooks takes minutes (nodejs/node#52962, #52677): one such
      // failure in test/auth/authentication.test.ts took ~60 s of CPU, another hung the file to its 300 s limit. Given a
      // message it fails at once, so a regression it catches says what broke instead of timing the run out. Every file
      // imports assert under that name (node:assert/strict's default export), so these two spellings are all of them.
      'no-restricted-syntax': [
        'error',
        {
          selector:
            "CallExpression[callee.type='MemberExpression'][callee.object.name='assert'][callee.property.name='ok'][arguments.length<2]",
          message: ASSERT_WITHOUT_MESSAGE,
        },
        {
          selector: "CallExpression[callee.type='Identifier'][callee.name='assert'][arguments.length<2]",
          message: ASSERT_WITHOUT_MESSAGE,
        },
        // A message spelled `undefined` is no message: the same slow path.
        {
          selector:
            "CallExpression[callee.type='MemberExpression'][callee.object.name='assert'][callee.property.name='ok'][arguments.1.type='Identifier'][arguments.1.name='undefined']",
          message: ASSERT_WITHOUT_MESSAGE,
        },
        {
          selector:
            "CallExpression[callee.type='Identifier'][callee.name='assert'][arguments.1.type='Identifier'][arguments.1.name='undefined']",
          message: ASSERT_WITHOUT_MESSAGE,
        },
      ],
    },
  },
  {
    // The promise rules need types. A promise left unawaited hides its rejection: in the gateway an unhandled
    // rejection, in a test an `assert.rejects` that cannot fail. node:test's describe/it/test are awaited by the runner.
    files: ['**/*.ts', '**/*.tsx', '**/*.mts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
    },
  },
  {
    files: ['test/**', 'bench/**', 'scripts/**', 'src/emulator/cli.ts', 'src/logging/journal.ts'],
    rules: { 'no-console': 'off' },
  },
);
