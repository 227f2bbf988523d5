#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the interop fixtures (tests/fixtures/interop) plus a
# few hand-written inputs. Safe to run again: files are overwritten, the fuzzer's own
# finds in the corpus are kept. The corpus directory is gitignored.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
fixtures="$here/../tests/fixtures/interop"
corpus="$here/corpus"
targets=(parse_message stream_framer digest_credentials uri_and_headers engine_input)

crlf=$'\r\n'

# Every target gets the raw messages: they are valid input for all of them.
for t in "${targets[@]}"; do
    mkdir -p "$corpus/$t"
    for f in "$fixtures"/rfc4475/*.dat; do
        cp "$f" "$corpus/$t/rfc4475-$(basename "$f")"
    done
    for f in "$fixtures"/rfc5118/*; do
        cp "$f" "$corpus/$t/rfc5118-$(basename "$f")"
    done
done

register="REGISTER sip:sentralbord.local SIP/2.0${crlf}\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKseed1;rport${crlf}\
Max-Forwards: 70${crlf}\
From: \"Alice\" <sip:alice@sentralbord.local>;tag=a1${crlf}\
To: <sip:alice@sentralbord.local>${crlf}\
Call-ID: seed-register-1${crlf}\
CSeq: 1 REGISTER${crlf}\
Contact: <sip:alice@127.0.0.1:5070;transport=udp>;expires=600${crlf}\
Expires: 3600${crlf}\
Content-Length: 0${crlf}${crlf}"

auth='Digest username="alice", realm="sentralbord.local", nonce="00000000655370f0000102030405060708090a0b0c0d0e0f0123456789abcdef0123456789abcdef", uri="sip:sentralbord.local", response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001, opaque="5ccc069c403ebaf9f0171e9517f40e41"'

register_auth="${register/CSeq: 1 REGISTER/CSeq: 2 REGISTER${crlf}Authorization: $auth}"

options="OPTIONS sip:sentralbord.local SIP/2.0${crlf}\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKseed2${crlf}\
Max-Forwards: 70${crlf}\
From: <sip:probe@127.0.0.1>;tag=p1${crlf}\
To: <sip:sentralbord.local>${crlf}\
Call-ID: seed-options-1${crlf}\
CSeq: 1 OPTIONS${crlf}\
l: 0${crlf}${crlf}"

invite="INVITE sip:bob@sentralbord.local SIP/2.0${crlf}\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKseed3;rport${crlf}\
Max-Forwards: 70${crlf}\
From: <sip:alice@sentralbord.local>;tag=i1${crlf}\
To: <sip:bob@sentralbord.local>${crlf}\
Call-ID: seed-invite-1${crlf}\
CSeq: 1 INVITE${crlf}\
Contact: <sip:alice@127.0.0.1:5070>${crlf}\
Content-Type: application/sdp${crlf}\
Content-Length: 4${crlf}${crlf}v=0${crlf/$'\r'/}"

cancel="CANCEL sip:bob@sentralbord.local SIP/2.0${crlf}\
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKseed3;rport${crlf}\
Max-Forwards: 70${crlf}\
From: <sip:alice@sentralbord.local>;tag=i1${crlf}\
To: <sip:bob@sentralbord.local>${crlf}\
Call-ID: seed-invite-1${crlf}\
CSeq: 1 CANCEL${crlf}\
Content-Length: 0${crlf}${crlf}"

for t in parse_message engine_input; do
    printf '%s' "$register" >"$corpus/$t/seed-register"
    printf '%s' "$register_auth" >"$corpus/$t/seed-register-auth"
    printf '%s' "$options" >"$corpus/$t/seed-options"
    printf '%s' "$invite" >"$corpus/$t/seed-invite"
done

# engine_input: several datagrams in one input, separated by "\0\0\0\n".
sep=$'\n'
printf '%s\0\0\0%s%s\0\0\0%s%s' "$register" "$sep" "$register" "$sep" "$register_auth" \
    >"$corpus/engine_input/seed-register-retransmit-auth"
printf '%s\0\0\0%s%s' "$invite" "$sep" "$cancel" >"$corpus/engine_input/seed-invite-cancel"

# stream_framer: the first two bytes choose chunk sizes (0 = whole, 1..127 = 1..16
# byte chunks, 128.. = large chunks); the rest is the TCP stream.
for f in "$fixtures"/rfc4475/*.dat; do
    b=$(basename "$f" .dat)
    { printf '\x03\x2a'; cat "$f"; } >"$corpus/stream_framer/small-$b"
    { printf '\x90\x01'; printf '\r\n'; cat "$f"; printf '\r\n\r\n'; cat "$f"; } \
        >"$corpus/stream_framer/pair-$b"
done
{ printf '\x01\x01'; printf '%s' "$register"; printf '\r\n\r\n'; printf '%s' "$invite"; } \
    >"$corpus/stream_framer/seed-bytewise"
{ printf '\x00\x00'; printf 'OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 99999\r\n\r\n'; } \
    >"$corpus/stream_framer/seed-too-large"
{ printf '\x05\x00'; printf 'OPTIONS sip:a@b SIP/2.0\r\nl:\r\n  4\r\ncontent-length : 4\r\n\r\nabcd'; } \
    >"$corpus/stream_framer/seed-folded-length"

# digest_credentials: Authorization values from the fixtures and typical ones.
d="$corpus/digest_credentials"
printf '%s' "$auth" >"$d/seed-md5-qop"
printf '%s' "${auth/algorithm=MD5/algorithm=SHA-256}" >"$d/seed-sha256"
printf 'Digest username="bob", realm="sentralbord.local", nonce="abc", uri="sip:x", response="0123456789abcdef0123456789abcdef"' \
    >"$d/seed-rfc2069"
printf 'Digest username="a\\"b", realm=r, nonce=n, uri="sip:x", response=00, qop="auth", nc=0000000A, cnonce=c' \
    >"$d/seed-escaped"
printf 'Basic YWxpY2U6c2VjcmV0' >"$d/seed-basic"
n=0
for f in "$fixtures"/rfc4475/*.dat; do
    { grep -a -i '^\(proxy-\)\?authorization *:' "$f" || true; } | sed 's/^[^:]*: *//; s/\r$//' |
        while IFS= read -r line; do
            n=$((n + 1))
            printf '%s' "$line" >"$d/fixture-$(basename "$f" .dat)-$n"
        done
done

# uri_and_headers: Request-URIs and address / Via header values from the fixtures.
u="$corpus/uri_and_headers"
for f in "$fixtures"/rfc4475/*.dat "$fixtures"/rfc5118/*; do
    b=$(basename "$f" .dat)
    head -n 1 "$f" | awk '{ printf "%s", $2 }' >"$u/ruri-$b"
    i=0
    { grep -a -i '^\(to\|from\|contact\|route\|record-route\|via\|t\|f\|m\|v\) *:' "$f" || true; } |
        sed 's/^[^:]*: *//; s/\r$//' |
        while IFS= read -r line; do
            i=$((i + 1))
            printf '%s' "$line" >"$u/hdr-$b-$i"
        done
done
printf 'sip:alice:pw@[2001:db8::1]:5061;transport=tcp;lr?subject=x%%20y' >"$u/seed-full-uri"
printf 'tel:+47-22-12-34-56;phone-context=example.com' >"$u/seed-tel"
printf 'SIP/2.0/UDP [::ffff:192.0.2.1]:5060;branch=z9hG4bKx;rport=5070;received=192.0.2.9' \
    >"$u/seed-via"

for t in "${targets[@]}"; do
    echo "$t: $(find "$corpus/$t" -type f | wc -l) inputs"
done
