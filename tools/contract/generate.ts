/**
 * `npm run contract:schema`: writes the published JSON Schema files to contract/ from the zod
 * schemas (see ./contract-schemas.ts), and removes schema files the code no longer generates.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONTRACT_DIR, committedSchemaFiles, renderContract } from './contract-schemas.js';

const files = await renderContract();
mkdirSync(CONTRACT_DIR, { recursive: true });
for (const [name, text] of files) writeFileSync(join(CONTRACT_DIR, name), text);
const stale = committedSchemaFiles().filter((name) => !files.has(name));
for (const name of stale) rmSync(join(CONTRACT_DIR, name));
console.log(
  `contract/: wrote ${[...files.keys()].join(', ')}${stale.length > 0 ? `; removed ${stale.join(', ')}` : ''}`,
);
