#!/usr/bin/env node
// Packs a store build as a CRX3 signed with an organisation's own key, and
// writes the update manifest (updates.xml) that Chrome and Edge poll, for
// organisations that host the extension themselves instead of using the
// Chrome Web Store or Edge Add-ons. The extension's ID then comes from that
// key, so the helper must be built to admit it:
// make DETOUR_EXTENSION_IDS=self-hosted=ID (the ID is printed here).
//
// Limits (docs/deploy.md): Chrome and Edge on Windows install an off-store
// CRX only on machines joined to an Active Directory domain (or enrolled in
// Chrome Browser Cloud Management / Intune), and on macOS only on managed
// Macs; Linux has no such limit.
//
//   node extension/crx3.mjs --zip BUILD.zip --key ORG.pem --out detour.crx \
//        [--codebase https://host/detour.crx --updates updates.xml]
//
// The format (Chromium components/crx_file): "Cr24", version 3, the header
// length, a CrxFileHeader protobuf, then the zip. The header holds the RSA
// public key and a PKCS#1 v1.5 SHA-256 signature over
// "CRX3 SignedData\0" ‖ len(signed_header_data) ‖ signed_header_data ‖ zip,
// where signed_header_data is a SignedData protobuf naming the crx_id (the
// first 16 bytes of SHA-256 of the public key).
import { createHash, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const MAGIC = Buffer.from('Cr24');
const SIGN_CONTEXT = Buffer.from('CRX3 SignedData\x00', 'binary');

function varint(n) {
  const out = [];
  while (n > 0x7f) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return Buffer.from(out);
}
// A length-delimited protobuf field.
function field(num, bytes) {
  return Buffer.concat([varint(num * 8 + 2), varint(bytes.length), bytes]);
}
function le32(n) { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; }

// Reads length-delimited fields; other wire types are an error, since a
// CRX3 header has none.
function fields(buf) {
  const out = [];
  let i = 0;
  const read = () => {
    let n = 0, mul = 1, b;
    do {
      if (i >= buf.length) throw new Error('crx3: truncated protobuf');
      b = buf[i++]; n += (b & 0x7f) * mul; mul *= 128;
    } while (b & 0x80);
    return n;
  };
  while (i < buf.length) {
    const tag = read();
    if ((tag & 7) !== 2) throw new Error(`crx3: unexpected wire type ${tag & 7}`);
    const len = read();
    if (i + len > buf.length) throw new Error('crx3: truncated field');
    out.push([Math.floor(tag / 8), buf.subarray(i, i + len)]);
    i += len;
  }
  return out;
}

// The extension ID Chrome gives a public key (SPKI DER): its SHA-256's first
// 128 bits in hex, with the digits 0–f written a–p.
export function extensionID(spkiDer) {
  return [...createHash('sha256').update(spkiDer).digest('hex').slice(0, 32)]
    .map((c) => String.fromCharCode(97 + parseInt(c, 16))).join('');
}

export function packCRX3(zip, privateKeyPem) {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'rsa') throw new Error('crx3: the key must be RSA (openssl genrsa -out org.pem 2048)');
  const pub = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const crxId = createHash('sha256').update(pub).digest().subarray(0, 16);
  const signedHeaderData = field(1, crxId);
  const sig = sign('sha256', Buffer.concat([SIGN_CONTEXT, le32(signedHeaderData.length), signedHeaderData, zip]), key);
  const header = Buffer.concat([field(2, Buffer.concat([field(1, pub), field(2, sig)])), field(10000, signedHeaderData)]);
  return { crx: Buffer.concat([MAGIC, le32(3), le32(header.length), header, zip]), id: extensionID(pub) };
}

// verifyCRX3 checks a CRX3 as Chrome does for its RSA proofs: the header
// parses, the crx_id is the first key's, every RSA signature is good. It
// returns the ID and the zip.
export function verifyCRX3(crx) {
  if (crx.length < 12 || !crx.subarray(0, 4).equals(MAGIC)) throw new Error('crx3: not a CRX file');
  if (crx.readUInt32LE(4) !== 3) throw new Error(`crx3: version ${crx.readUInt32LE(4)}, want 3`);
  const hlen = crx.readUInt32LE(8);
  if (12 + hlen > crx.length) throw new Error('crx3: header longer than the file');
  const header = crx.subarray(12, 12 + hlen);
  const zip = crx.subarray(12 + hlen);
  const proofs = [];
  let signed = null;
  for (const [n, v] of fields(header)) {
    if (n === 2) {
      const p = Object.fromEntries(fields(v));
      proofs.push({ pub: p[1], sig: p[2] });
    } else if (n === 10000) signed = v;
  }
  if (!signed || proofs.length === 0) throw new Error('crx3: no signed header data or no RSA proof');
  const crxId = Object.fromEntries(fields(signed))[1];
  const msg = Buffer.concat([SIGN_CONTEXT, le32(signed.length), signed, zip]);
  let id = null;
  for (const p of proofs) {
    if (!p.pub || !p.sig) throw new Error('crx3: incomplete proof');
    const pub = createPublicKey({ key: p.pub, format: 'der', type: 'spki' });
    if (!verify('sha256', msg, pub, p.sig)) throw new Error('crx3: bad signature');
    if (createHash('sha256').update(p.pub).digest().subarray(0, 16).equals(crxId)) id = extensionID(p.pub);
  }
  if (!id) throw new Error('crx3: no proof is by the key the crx_id names');
  return { id, zip };
}

const xmlEscape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

// updateManifest is the gupdate XML Chrome and Edge fetch from the update URL
// named in ExtensionInstallForcelist ("ID;https://host/updates.xml").
export function updateManifest(id, version, codebase) {
  if (!/^https?:\/\//.test(codebase)) throw new Error(`crx3: codebase ${codebase} is not an http(s) URL`);
  if (!/^\d+(\.\d+){0,3}$/.test(version)) throw new Error(`crx3: version ${version} is not 1–4 dot-separated numbers`);
  return `<?xml version='1.0' encoding='UTF-8'?>
<gupdate xmlns='http://www.google.com/update2/response' protocol='2.0'>
  <app appid='${xmlEscape(id)}'>
    <updatecheck codebase='${xmlEscape(codebase)}' version='${xmlEscape(version)}' />
  </app>
</gupdate>
`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const a = {};
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i += 2) {
    const k = args[i].replace(/^--/, '');
    if (!['zip', 'key', 'out', 'codebase', 'updates', 'version'].includes(k) || args[i + 1] === undefined) {
      console.error(`crx3.mjs: unknown or incomplete argument ${args[i]}`); process.exit(2);
    }
    a[k] = args[i + 1];
  }
  if (!a.zip || !a.key || !a.out) { console.error('crx3.mjs: --zip, --key and --out are required'); process.exit(2); }
  try {
    const zip = readFileSync(a.zip);
    const { crx, id } = packCRX3(zip, readFileSync(a.key));
    verifyCRX3(crx);
    writeFileSync(a.out, crx);
    console.log(`crx3: ${a.out} (extension ID ${id}; build the helper with DETOUR_EXTENSION_IDS=self-hosted=${id})`);
    if (a.updates) {
      if (!a.codebase || !a.version) throw new Error('--updates needs --codebase and --version');
      writeFileSync(a.updates, updateManifest(id, a.version, a.codebase));
      console.log(`crx3: ${a.updates} (policy: ExtensionInstallForcelist "${id};<URL of ${a.updates}>")`);
    }
  } catch (err) {
    console.error(`crx3.mjs: ${err.message}`); process.exit(1);
  }
}
