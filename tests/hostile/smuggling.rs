//! Request-smuggling and odd-framing vectors, written for corral's tests.
//! Each is raw bytes as a client (or a confused proxy) would send them; most
//! carry a second request after the first so a framing disagreement shows as
//! a different boundary. Used by the differential check and the fuzz seeds.

pub struct Smuggle {
    pub name: &'static str,
    pub raw: &'static [u8],
}

const fn s(name: &'static str, raw: &'static [u8]) -> Smuggle {
    Smuggle { name, raw }
}

pub const SMUGGLING: &[Smuggle] = &[
    // CL.TE / TE.CL: both framings.
    s("cl-te", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX"),
    s("te-cl", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n"),
    s("cl-te-zero", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
    // TE.TE obfuscations.
    s("te-space-before-colon", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n"),
    s("te-xchunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"),
    s("te-chunked-comma-identity", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n"),
    s("te-identity-comma-chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n"),
    s("te-twice-chunked", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    s("te-chunked-then-gzip", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n"),
    s("te-uppercase", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n"),
    s("te-tab-value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n"),
    s("te-trailing-space", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \r\n\r\n0\r\n\r\n"),
    s("te-vertical-tab", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n"),
    s("te-obs-fold", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n"),
    s("te-leading-fold-line", b"POST / HTTP/1.1\r\n Transfer-Encoding: chunked\r\nHost: a\r\n\r\n0\r\n\r\n"),
    s("te-underscore", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer_Encoding: chunked\r\nContent-Length: 2\r\n\r\nhi"),
    s("te-nul-in-value", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chun\x00ked\r\n\r\n0\r\n\r\n"),
    s("te-quoted", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n"),
    s("te-http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    s("te-empty", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\nContent-Length: 2\r\n\r\nhi"),
    // Content-Length variants.
    s("cl-duplicate-same", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi"),
    s("cl-duplicate-differ", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 5\r\n\r\nhello"),
    s("cl-list-same", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2, 2\r\n\r\nhi"),
    s("cl-plus", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\nhi"),
    s("cl-negative", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
    s("cl-hex", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x2\r\n\r\nhi"),
    s("cl-leading-zeros", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0002\r\n\r\nhiGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("cl-space-inside", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\nhello world!"),
    s("cl-overflow", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
    s("cl-space-before-colon", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 2\r\n\r\nhi"),
    s("cl-on-get-with-pipeline", b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("cl-pipelined", b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET /next HTTP/1.1\r\nHost: a\r\n\r\n"),
    // Chunked body oddities.
    s("chunk-size-overflow", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n"),
    s("chunk-size-prefix-0x", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n"),
    s("chunk-size-space", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n"),
    s("chunk-ext", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\n\r\n"),
    s("chunk-bare-lf", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n"),
    s("chunk-data-too-long", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n"),
    s("chunk-trailer", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("chunk-trailer-bare-lf", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: 1\n\r\n"),
    s("chunk-pipelined", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /n HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("chunk-negative", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
    s("chunk-missing-crlf-after-data", b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
    // Head whitespace, line endings, bytes.
    s("bare-lf-head", b"GET / HTTP/1.1\nHost: a\n\n"),
    s("bare-cr-head", b"GET / HTTP/1.1\rHost: a\r\n\r\n"),
    s("double-space-request-line", b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("tab-request-line", b"GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("trailing-space-version", b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n"),
    s("lowercase-version", b"GET / http/1.1\r\nHost: a\r\n\r\n"),
    s("http09", b"GET /\r\n\r\n"),
    s("http2-preface-like", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n"),
    s("leading-crlf", b"\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("nul-in-target", b"GET /a\x00b HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("nul-in-header-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n"),
    s("nul-in-header-name", b"GET / HTTP/1.1\r\nHost: a\r\nX-\x00A: b\r\n\r\n"),
    s("obs-text-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xe9\r\n\r\n"),
    s("obs-text-target", b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("ctl-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n"),
    s("del-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n"),
    s("space-in-name", b"GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n"),
    s("empty-name", b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n"),
    s("no-colon", b"GET / HTTP/1.1\r\nHost: a\r\nX-A b\r\n\r\n"),
    s("whitespace-only-line", b"GET / HTTP/1.1\r\nHost: a\r\n \r\n\r\n"),
    s("duplicate-host", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
    s("missing-host-11", b"GET / HTTP/1.1\r\n\r\n"),
    s("host-with-path", b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"),
    s("absolute-form", b"GET http://a/x HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("asterisk-get", b"GET * HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("connect-authority", b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
    s("lowercase-method", b"get / HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("expect-continue-body", b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi"),
    s("expect-other", b"POST / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\nContent-Length: 2\r\n\r\nhi"),
    s("connection-close-then-more", b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"),
    s("get-keepalive-pipeline", b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"),
];
