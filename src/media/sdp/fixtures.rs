//! Real-world style SDP bodies shared by the tests.

/// SIPp's built-in `uac` scenario body.
pub const SIPP: &str = "v=0\r\n\
o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n\
s=-\r\n\
c=IN IP4 127.0.0.1\r\n\
t=0 0\r\n\
m=audio 6000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

/// baresip: many codecs, `a=rtcp`, session and media attributes we do not model.
pub const BARESIP: &str = "v=0\r\n\
o=- 1874355419 1209475052 IN IP4 192.168.1.10\r\n\
s=-\r\n\
c=IN IP4 192.168.1.10\r\n\
t=0 0\r\n\
a=tool:baresip 3.10.1\r\n\
m=audio 10432 RTP/AVP 96 97 98 9 0 8 101\r\n\
b=AS:128\r\n\
a=rtpmap:96 opus/48000/2\r\n\
a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
a=rtpmap:97 G7221/32000\r\n\
a=fmtp:97 bitrate=48000\r\n\
a=rtpmap:98 G7221/16000\r\n\
a=fmtp:98 bitrate=32000\r\n\
a=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtcp:10433\r\n\
a=sendrecv\r\n\
a=label:1\r\n\
a=rtcp-rsize\r\n\
a=ssrc:3211286958 cname:b8a0c1d2-0e5f\r\n\
a=ptime:20\r\n\
m=video 10434 RTP/AVP 100\r\n\
b=AS:512\r\n\
a=rtpmap:100 H264/90000\r\n\
a=fmtp:100 packetization-mode=1\r\n\
a=rtcp:10435\r\n\
a=sendrecv\r\n";

/// An IPv6 loopback call with bare LF line ends.
pub const IPV6: &str = "v=0\n\
o=alice 2890844526 2890844526 IN IP6 ::1\n\
s=Talk\n\
c=IN IP6 ::1\n\
t=0 0\n\
m=audio 49170 RTP/AVP 0 8 101\n\
a=rtpmap:101 telephone-event/8000\n\
a=fmtp:101 0-16\n";

/// RFC 2543-style hold: `c=0.0.0.0`, no direction attribute.
pub const HOLD_ZERO_ADDRESS: &str = "v=0\r\n\
o=- 1 2 IN IP4 10.1.1.1\r\n\
s=-\r\n\
c=IN IP4 0.0.0.0\r\n\
t=0 0\r\n\
m=audio 5004 RTP/AVP 0 8\r\n";

/// A Linphone/Chrome mix: plain RTP/AVP, but with ICE, best-effort SDES, rtcp-mux, BUNDLE.
pub const WEBRTC_ISH: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0\r\n\
a=ice-lite\r\n\
a=msid-semantic: WMS stream\r\n\
m=audio 9 RTP/AVP 111 0 8 13 110\r\n\
c=IN IP4 203.0.113.7\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2122260223 192.168.0.5 54321 typ host generation 0\r\n\
a=candidate:2 1 udp 1686052607 203.0.113.7 54321 typ srflx raddr 192.168.0.5 rport 54321\r\n\
a=end-of-candidates\r\n\
a=ice-ufrag:F7gI\r\n\
a=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n\
a=ice-options:trickle\r\n\
a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2\r\n\
a=setup:actpass\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n\
a=mid:0\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=sendrecv\r\n\
a=msid:stream track\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=rtcp-fb:111 transport-cc\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
a=rtpmap:110 telephone-event/48000\r\n\
a=ssrc:1001 cname:abc\r\n";

/// A real WebRTC offer: DTLS-SRTP profile, which a plain relay cannot carry.
pub const WEBRTC_DTLS: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\n\
c=IN IP4 0.0.0.0\r\n\
a=fingerprint:sha-256 49:66:12:17\r\n\
a=setup:actpass\r\n\
a=rtpmap:111 opus/48000/2\r\n";

/// A T.38 re-INVITE body: audio rejected, an image stream over udptl.
pub const T38: &str = "v=0\r\n\
o=- 1 3 IN IP4 198.51.100.20\r\n\
s=-\r\n\
c=IN IP4 198.51.100.20\r\n\
t=0 0\r\n\
m=audio 0 RTP/AVP 0\r\n\
m=image 40000 udptl t38\r\n\
a=T38FaxVersion:0\r\n\
a=T38MaxBitRate:14400\r\n\
a=T38FaxRateManagement:transferredTCF\r\n\
a=T38FaxMaxBuffer:262\r\n\
a=T38FaxMaxDatagram:176\r\n\
a=T38FaxUdpEC:t38UDPRedundancy\r\n";

/// A carrier offer with static payload types only and no `a=rtpmap` at all.
pub const STATIC_ONLY: &str = "v=0\r\n\
o=carrier 0123 1 IN IP4 carrier.example.net\r\n\
s=session\r\n\
c=IN IP4 192.0.2.50\r\n\
t=0 0\r\n\
m=audio 20000 RTP/AVP 18 0 8 3 9 13\r\n\
a=ptime:20\r\n";
