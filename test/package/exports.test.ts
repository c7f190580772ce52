import test from 'ava';
import * as keyglass from '../../index.js';

test('the package exposes LeafClient, the key server and every layer', (t) => {
  t.is(typeof keyglass.LeafClient, 'function');
  t.is(typeof keyglass.server.KeyServer, 'function');
  t.is(typeof keyglass.coreGroup.GroupMember, 'function');
  t.is(typeof keyglass.crypto.loadSuite, 'function');
  t.is(typeof keyglass.keytree.LeafKeyTree, 'function');
  t.is(typeof keyglass.auth.PeerVerifier, 'function');
});
