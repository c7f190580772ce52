/** `keyglass leaf`'s one-line join failure quotes what the servers said (cli/join-failure.ts). */
import test from 'ava';
import { LeafConnectError } from '../../leaf-sdk/index.js';
import { joinFailure } from '../../cli/join-failure.js';

test('a failed join names the latest distinct reasons, not only the attempt count', (t) => {
  const e = new LeafConnectError('no core server welcomed us after 3 attempts', [
    '127.0.0.1:7101: auth: peer certificate not verified: CERT_HAS_EXPIRED',
    '127.0.0.1:7102: error: connect ECONNREFUSED 127.0.0.1:7102',
    '127.0.0.1:7101: auth: peer certificate not verified: CERT_HAS_EXPIRED',
  ]);
  t.is(
    joinFailure(e),
    'no core server welcomed us after 3 attempts; last: 127.0.0.1:7101: auth: peer certificate not verified: CERT_HAS_EXPIRED | 127.0.0.1:7102: error: connect ECONNREFUSED 127.0.0.1:7102',
  );
  t.is(joinFailure(new Error('plain')), 'plain');
});
