/**
 * The leaf port's revocation hand-over between the main thread and its TLS thread
 * (server/leaf-port.ts): which CRL loads renumber, and which links the main thread
 * closes on arrival.
 */
import test from 'ava';
import { leafLinkRefusal, nextLeafPortCrl, type LeafLinkInfo } from '../../server/index.js';

const link = (crlVersion: number): LeafLinkInfo => ({
  cert: { name: 'leaf-1', serial: '01', fingerprint: new Uint8Array(32) },
  crlVersion,
});

test('only a load that revoked something renumbers the CRL', (t) => {
  const first = nextLeafPortCrl(undefined, 'pem-1', false);
  t.deepEqual(first, { pem: 'pem-1', version: 0 });
  const refreshed = nextLeafPortCrl(first, 'pem-2', false); // e.g. a new nextUpdate
  t.deepEqual(refreshed, { pem: 'pem-2', version: 0 });
  const revoking = nextLeafPortCrl(refreshed, 'pem-3', true);
  t.deepEqual(revoking, { pem: 'pem-3', version: 1 });
  t.is(nextLeafPortCrl(revoking, 'pem-4', true).version, 2);
});

test('a link judged before the newest revoking load is closed; one judged at or after it is taken', (t) => {
  t.is(leafLinkRefusal(link(0), 0), undefined, 'no revocation since: taken');
  t.is(leafLinkRefusal(link(1), 1), undefined);
  t.is(leafLinkRefusal(link(2), 1), undefined, 'the thread may already hold a newer CRL');
  t.is(leafLinkRefusal(link(0), 1), 'judged against an older CRL');
  t.is(leafLinkRefusal(undefined, 0), 'no verified certificate');
});
