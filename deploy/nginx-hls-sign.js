// Checks the signed media URIs of mediasrv's non-public lives in nginx, without asking
// mediasrv (deploy/nginx-cache.conf; mediasrv/httpkit/url_signing.py is the other side).
//
// A signed URI carries hs=EXPIRES.SIGNATURE: EXPIRES a Unix time in whole seconds,
// SIGNATURE the unpadded base64url HMAC-SHA256, keyed with the secret shared with mediasrv
// (hls.url_signing_secret), of "/live/NAME/" + "\n" + EXPIRES. HMAC-SHA256 rather than
// nginx's built-in secure_link_md5 (MD5 of a string with the secret in it): a real MAC
// with a modern hash, and the very computation mediasrv makes, so either side can check
// what the other signed.
//
// verify(r) is the value of $mediasrv_hls_signature:
//   "none"    the request carries no hs (a public live's media; mediasrv decides),
//   "ok"      a valid, unexpired signature for this stream's prefix,
//   "expired" a signature whose time is past,
//   "bad"     anything else (malformed, another stream's, tampered, another key).
const crypto = require('crypto');

const SIGNED = /^([0-9]{1,12})\.([A-Za-z0-9_-]{43})$/;
const STREAM = /^\/live\/([A-Za-z0-9_-]+)\//;

function sameText(a, b) {
    // Constant time for equal lengths: how much of a signature matched is not timed.
    if (a.length !== b.length) {
        return false;
    }
    let diff = 0;
    for (let i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

function verify(r) {
    const value = r.args.hs;
    if (value === undefined || value === '') {
        return 'none';
    }
    const signed = SIGNED.exec(Array.isArray(value) ? '' : value);
    const stream = STREAM.exec(r.uri);
    const secret = r.variables.mediasrv_url_secret;
    if (!signed || !stream || !secret) {
        return 'bad';
    }
    const expires = Number(signed[1]);
    const mac = crypto.createHmac('sha256', secret)
        .update('/live/' + stream[1] + '/\n' + signed[1])
        .digest('base64url');
    if (!sameText(mac, signed[2])) {
        return 'bad';
    }
    return expires < Date.now() / 1000 ? 'expired' : 'ok';
}

export default { verify };
