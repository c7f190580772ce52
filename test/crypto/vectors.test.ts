/**
 * Official test vectors, run on every backend variant (see helpers.allSuites). Every expected
 * value is copied from the cited document; none is computed here.
 */
import test from 'ava';
import { CryptoError } from '../../crypto/index.js';
import { hchacha20 } from '../../crypto/xchacha-subkey.js';
import { allSuites, counting, fill, hex, toHex, utf8 } from './helpers.js';

const suites = await allSuites();
const SUNSCREEN = utf8(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
);

for (const s of suites) {
  test(`${s.name}: RFC 8439 §2.8.2 ChaCha20-Poly1305 AEAD`, (t) => {
    const key = counting(0x80, 32);
    const nonce = hex('070000004041424344454647');
    const aad = hex('50515253c0c1c2c3c4c5c6c7');
    const expected =
      'd31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b' +
      '1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc' +
      '3ff4def08e4b7a9de576d26586cec64b6116' +
      '1ae10b594f09e26a7e902ecbd0600691';
    const sealed = s.chachaSeal(key, nonce, SUNSCREEN, aad);
    t.is(toHex(sealed), expected);
    t.deepEqual(s.chachaOpen(key, nonce, sealed, aad), SUNSCREEN);
  });

  test(`${s.name}: RFC 8439 §A.5 ChaCha20-Poly1305 decryption`, (t) => {
    const key = hex('1c9240a5eb55d38af333888604f6b5f0473917c1402b80099dca5cbc207075c0');
    const nonce = hex('000000000102030405060708');
    const aad = hex('f33388860000000000004e91');
    const ciphertext = hex(
      '64a0861575861af460f062c79be643bd5e805cfd345cf389f108670ac76c8cb2' +
        '4c6cfc18755d43eea09ee94e382d26b0bdb7b73c321b0100d4f03b7f355894cf' +
        '332f830e710b97ce98c8a84abd0b948114ad176e008d33bd60f982b1ff37c855' +
        '9797a06ef4f0ef61c186324e2b3506383606907b6a7c02b0f9f6157b53c867e4' +
        'b9166c767b804d46a59b5216cde7a4e99040c5a40433225ee282a1b0a06c523e' +
        'af4534d7f83fa1155b0047718cbc546a0d072b04b3564eea1b422273f548271a' +
        '0bb2316053fa76991955ebd63159434ecebb4e466dae5a1073a6727627097a10' +
        '49e617d91d361094fa68f0ff77987130305beaba2eda04df997b714d6c6f2c29' +
        'a6ad5cb4022b02709b',
    );
    const tag = hex('eead9d67890cbb22392336fea1851f38');
    const plaintext =
      '496e7465726e65742d4472616674732061726520647261667420646f63756d65' +
      '6e74732076616c696420666f722061206d6178696d756d206f6620736978206d' +
      '6f6e74687320616e64206d617920626520757064617465642c207265706c6163' +
      '65642c206f72206f62736f6c65746564206279206f7468657220646f63756d65' +
      '6e747320617420616e792074696d652e20497420697320696e617070726f7072' +
      '6961746520746f2075736520496e7465726e65742d4472616674732061732072' +
      '65666572656e6365206d6174657269616c206f7220746f206369746520746865' +
      '6d206f74686572207468616e206173202fe2809c776f726b20696e2070726f67' +
      '726573732e2fe2809d';
    const sealed = new Uint8Array([...ciphertext, ...tag]);
    t.is(toHex(s.chachaOpen(key, nonce, sealed, aad)), plaintext);
  });

  test(`${s.name}: draft-irtf-cfrg-xchacha-03 §A.3.1 XChaCha20-Poly1305`, (t) => {
    const key = counting(0x80, 32);
    const nonce = counting(0x40, 24);
    const aad = hex('50515253c0c1c2c3c4c5c6c7');
    const expected =
      'bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb' +
      '731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452' +
      '2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9' +
      '21f9664c97637da9768812f615c68b13b52e' +
      'c0875924c1c7987947deafd8780acf49';
    const sealed = s.aeadSeal(key, nonce, SUNSCREEN, aad);
    t.is(toHex(sealed), expected);
    t.deepEqual(s.aeadOpen(key, nonce, sealed, aad), SUNSCREEN);
  });

  test(`${s.name}: AES-256-GCM, McGrew–Viega test cases 14, 15, 16`, (t) => {
    // Test case 14: zero key, zero nonce, one zero block.
    t.is(
      toHex(s.gcmSeal(fill(32, 0), fill(12, 0), fill(16, 0))),
      'cea7403d4d606b6e074ec5d3baf39d18' + 'd0d1c8a799996bf0265b98b5d48ab919',
    );
    const key = hex('feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308');
    const nonce = hex('cafebabefacedbaddecaf888');
    const p64 = hex(
      'd9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72' +
        '1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255',
    );
    const c64 =
      '522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa' +
      '8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad';
    // Test case 15: no AAD.
    const sealed15 = s.gcmSeal(key, nonce, p64);
    t.is(toHex(sealed15), c64 + 'b094dac5d93471bdec1a502270e3cc6c');
    t.deepEqual(s.gcmOpen(key, nonce, sealed15), p64);
    // Test case 16: 60-byte plaintext with AAD.
    const aad = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
    const sealed16 = s.gcmSeal(key, nonce, p64.subarray(0, 60), aad);
    t.is(toHex(sealed16), c64.slice(0, 120) + '76fc6ece0f4e1768cddf8853bb2d551b');
    t.deepEqual(s.gcmOpen(key, nonce, sealed16, aad), p64.subarray(0, 60));
  });

  test(`${s.name}: RFC 3394 §4.3, §4.5 and §4.6 AES key wrap with a 256-bit KEK`, (t) => {
    const kek = counting(0x00, 32);
    const cases: Array<[string, string]> = [
      ['00112233445566778899aabbccddeeff', '64e8c3f9ce0f5ba263e9777905818a2a93c8191e7d6e8ae7'],
      [
        '00112233445566778899aabbccddeeff0001020304050607',
        'a8f9bc1612c68b3ff6e6f4fbe30e71e4769c8b80a32cb8958cd5d17d6b254da1',
      ],
      [
        '00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f',
        '28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21',
      ],
    ];
    for (const [keyData, wrapped] of cases) {
      t.is(toHex(s.wrapKey(kek, hex(keyData))), wrapped);
      t.is(toHex(s.unwrapKey(kek, hex(wrapped))), keyData);
    }
  });

  test(`${s.name}: RFC 8032 §7.1 Ed25519 tests 1, 2, 3, 1024 and SHA(abc)`, (t) => {
    for (const v of ED25519_VECTORS) {
      const seed = hex(v.secret);
      const message = hex(v.message);
      t.is(toHex(s.ed25519PublicKey(seed)), v.public, v.name);
      t.is(toHex(s.ed25519Sign(seed, message)), v.signature, v.name);
      t.true(s.ed25519Verify(hex(v.public), message, hex(v.signature)), v.name);
    }
  });

  test(`${s.name}: RFC 7748 §5.2 X25519 scalar multiplication (incl. 1 and 1,000 iterations)`, (t) => {
    t.is(
      toHex(
        s.x25519(
          hex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'),
          hex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c'),
        ),
      ),
      'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552',
    );
    t.is(
      toHex(
        s.x25519(
          hex('4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d'),
          hex('e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493'),
        ),
      ),
      '95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957',
    );
    // The iterated test feeds each output back as the next scalar (k, u) ← (X25519(k, u), k).
    // The noble backend runs the 1-iteration check only: 1,000 pure-JS ladders cost ~1.5 s.
    const iterations = s.name === 'noble' ? 1 : 1000;
    let k = hex('0900000000000000000000000000000000000000000000000000000000000000');
    let u = k;
    for (let i = 1; i <= iterations; i++) {
      [k, u] = [s.x25519(k, u), k];
      if (i === 1) t.is(toHex(k), '422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079');
    }
    if (iterations === 1000)
      t.is(toHex(k), '684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51');
  });

  test(`${s.name}: RFC 7748 §6.1 X25519 Diffie-Hellman`, (t) => {
    const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bob = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const alicePublic = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
    const bobPublic = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    t.is(toHex(s.x25519PublicKey(alice)), alicePublic);
    t.is(toHex(s.x25519PublicKey(bob)), bobPublic);
    t.is(toHex(s.x25519(alice, hex(bobPublic))), shared);
    t.is(toHex(s.x25519(bob, hex(alicePublic))), shared);
  });

  test(`${s.name}: X25519 rejects low-order peer keys with bad-point`, (t) => {
    const secret = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    // u = 0 and u = 1 (orders 4 and 1), and 1 + 2^255 − 19 (non-canonical encoding of 1).
    const lowOrder = [
      fill(32, 0),
      hex('0100000000000000000000000000000000000000000000000000000000000000'),
      hex('eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f'),
    ];
    for (const peer of lowOrder) {
      const err = t.throws(() => s.x25519(secret, peer), { instanceOf: CryptoError });
      t.is(err?.code, 'bad-point');
    }
  });

  test(`${s.name}: RFC 5869 HKDF-SHA256 test cases 1–3`, (t) => {
    t.is(
      toHex(s.hkdf(fill(22, 0x0b), counting(0x00, 13), counting(0xf0, 10), 42)),
      '3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865',
    );
    t.is(
      toHex(s.hkdf(counting(0x00, 80), counting(0x60, 80), counting(0xb0, 80), 82)),
      'b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c' +
        '59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71' +
        'cc30c58179ec3e87c14c01d5c1f3434f1d87',
    );
    t.is(
      toHex(s.hkdf(fill(22, 0x0b), new Uint8Array(0), new Uint8Array(0), 42)),
      '8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8',
    );
  });

  test(`${s.name}: RFC 4231 HMAC-SHA256 test cases 1–4, 6, 7`, (t) => {
    const cases: Array<[Uint8Array, Uint8Array, string]> = [
      [fill(20, 0x0b), utf8('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
      [
        utf8('Jefe'),
        utf8('what do ya want for nothing?'),
        '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
      ],
      [fill(20, 0xaa), fill(50, 0xdd), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
      [
        counting(0x01, 25),
        fill(50, 0xcd),
        '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b',
      ],
      [
        fill(131, 0xaa),
        utf8('Test Using Larger Than Block-Size Key - Hash Key First'),
        '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
      ],
      [
        fill(131, 0xaa),
        utf8(
          'This is a test using a larger than block-size key and a larger than block-size data. ' +
            'The key needs to be hashed before being used by the HMAC algorithm.',
        ),
        '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
      ],
    ];
    for (const [key, data, mac] of cases) t.is(toHex(s.hmacSha256(key, data)), mac);
  });

  test(`${s.name}: SHA-256 FIPS 180-2 "abc" and empty input`, (t) => {
    t.is(toHex(s.sha256(utf8('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    t.is(
      toHex(s.sha256(new Uint8Array(0))),
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });
}

test('HChaCha20: draft-irtf-cfrg-xchacha-03 §2.2.1 test vector', (t) => {
  const subkey = hchacha20(counting(0x00, 32), hex('000000090000004a0000000031415927'));
  t.is(toHex(subkey), '82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
});

interface Ed25519Vector {
  name: string;
  secret: string;
  public: string;
  message: string;
  signature: string;
}

const ED25519_VECTORS: Ed25519Vector[] = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
  {
    name: 'TEST 1024',
    secret: 'f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5',
    public: '278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e',
    message:
      '08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98fa6e264bf09efe12ee50f8f54e9f77b1' +
      'e355f6c50544e23fb1433ddf73be84d879de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d' +
      '658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc1a858efcb8550ee3a5e1998bd177e93a' +
      '7363c344fe6b199ee5d02e82d522c4feba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e' +
      '06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbefefd75499da96bd68a8a97b928a8bbc10' +
      '3b6621fcde2beca1231d206be6cd9ec7aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1' +
      '85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2d17ba70eb6248e594e1a2297acbbb39d' +
      '502f1a8c6eb6f1ce22b3de1a1f40cc24554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270' +
      '88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc2732e69485bbc9c90bfbd62481d9089b' +
      'eccf80cfe2df16a2cf65bd92dd597b0707e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba' +
      'b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51addd3b75a2b1ae0784504df543af8969b' +
      'e3ea7082ff7fc9888c144da2af58429ec96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7' +
      '51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c42f58c30c04aafdb038dda0847dd988d' +
      'cda6f3bfd15c4b4c4525004aa06eeff8ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df' +
      'f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08d78ff4ef5d63653a65040cf9bfd4aca7' +
      '984a74d37145986780fc0b16ac451649de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4' +
      '88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a32ef5b52a1ecc820e308aa342721aac09' +
      '43bf6686b64b2579376504ccc493d97e6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f' +
      'b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b50d334ba77c225bc307ba537152f3f161' +
      '0e4eafe595f6d9d90d11faa933a15ef1369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d' +
      'b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c0618983f8741c5ef68d3a101e8a3b8ca' +
      'c60c905c15fc910840b94c00a0b9d0',
    signature:
      '0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03',
  },
  {
    name: 'TEST SHA(abc)',
    secret: '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42',
    public: 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf',
    message:
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    signature:
      'dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704',
  },
];
