import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Packages only the tools and tests use: the product (src/) never imports them. */
const toolPackages = [
  '@temporalio/testing',
  'smtp-server',
  'mailparser',
  'playwright-core',
  'fast-check',
  'vitest',
  'tsx',
  'yaml',
  'ajv',
  'ajv-formats',
];

export default tseslint.config(
  {
    ignores: [
      'dist/',
      'sandbox-dist/',
      'node_modules/',
      '.venv/',
      'src/heygen/generated/',
      'coverage/',
      'artifacts/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // The layout is the architecture: what is deployed (src/) never reaches into the tools or tests.
  {
    files: ['src/**/*.ts'],
    ignores: ['src/workflows/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: toolPackages.map((name) => ({
            name,
            message: 'src/ is the product: no tool or test packages.',
          })),
          patterns: [
            {
              group: ['**/tools/**', '**/test/**'],
              message: 'src/ is the product: it never imports tools or tests.',
            },
          ],
        },
      ],
    },
  },
  // Workflow code is bundled into Temporal's deterministic sandbox: no Node modules, nothing that
  // does I/O. Activities are imported as types only.
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...toolPackages.map((name) => ({
              name,
              message: 'src/ is the product: no tool or test packages.',
            })),
            ...['@temporalio/worker', '@temporalio/client', '@temporalio/activity', 'nodemailer'].map(
              (name) => ({
                name,
                message: 'Workflow code must stay deterministic: no I/O modules.',
              }),
            ),
          ],
          patterns: [
            {
              group: ['**/tools/**', '**/test/**'],
              message: 'src/ is the product: it never imports tools or tests.',
            },
            { group: ['node:*'], message: 'Workflow code must stay deterministic: no Node built-ins.' },
            {
              group: [
                '../activities/*',
                '!../activities/types.js',
                '../heygen/*',
                '../email/*',
                '../codec/*',
                '../gateway/*',
                '../config/*',
                '!../config/timeouts.js',
                // zod is loaded once per cached workflow (~0.8 MB each): the schemas stay in the worker.
                '../contract/index.js',
                '../contract/schemas.js',
                '../rules/input.js',
                'zod',
                '../worker.js',
                '../starter.js',
                '../logging.js',
                '../temporal-connection.js',
              ],
              allowTypeImports: true,
              message: 'Workflow code imports activity and client modules as types only (they do I/O).',
            },
          ],
        },
      ],
    },
  },
  // Tools share one harness with the tests, but never import the tests themselves.
  {
    files: ['tools/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/test/**'],
              message: 'tools/ never imports tests; shared helpers live in tools/kit.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['eslint.config.js'],
    ...tseslint.configs.disableTypeChecked,
  },
);
