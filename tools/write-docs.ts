import { GENERATED_DOCS, writeDoc } from './generated-docs.js';

// `npm run docs`: rewrites every generated document from the code.
for (const doc of GENERATED_DOCS) console.log(`${writeDoc(doc) ? 'wrote    ' : 'unchanged'} ${doc.path}`);
