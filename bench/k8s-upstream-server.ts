/**
 * The answering side of `npm run bench -- k8s-upstream`: an HTTPS server that answers every
 * request as kube-apiserver answers a `get` of one ConfigMap (its headers, a ~700-byte JSON body,
 * Content-Length). It runs in its own process so that its CPU is not counted as the client's.
 * Arguments: certificate file, key file. Prints `listening <port>`.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [certFile, keyFile] = process.argv.slice(2);
const body = Buffer.from(JSON.stringify({
  kind: 'ConfigMap', apiVersion: 'v1',
  metadata: {
    name: 'bench-0', namespace: 'default', uid: '2f4c1a43-8a55-4a9e-9f0e-1234567890ab', resourceVersion: '1234', creationTimestamp: '2026-12-07T09:00:00Z',
    managedFields: [{ manager: 'kubectl-client-side-apply', operation: 'Update', apiVersion: 'v1', time: '2026-12-07T09:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:data': { '.': {}, 'f:value': {} } } }],
  },
  data: { value: 'x'.repeat(200) },
}));
const server = createServer({ cert: readFileSync(certFile!), key: readFileSync(keyFile!), keepAliveTimeout: 600_000 }, (_req, res) => {
  res.writeHead(200, [
    'Audit-Id', 'f3a6e0c4-1111-2222-3333-444455556666', 'Cache-Control', 'no-cache, private', 'Content-Type', 'application/json',
    'X-Kubernetes-Pf-Flowschema-Uid', 'a1b2c3d4-1111-2222-3333-444455556666', 'X-Kubernetes-Pf-Prioritylevel-Uid', 'b1b2c3d4-1111-2222-3333-444455556666',
    'Content-Length', String(body.length),
  ]);
  res.end(body);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(`listening ${typeof address === 'object' && address !== null ? address.port : 0}`);
});
