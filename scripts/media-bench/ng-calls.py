#!/usr/bin/env python3
"""Sets up N relayed calls on rtpengine over its "ng" control protocol (bencoded
dictionaries over UDP, each message prefixed by a cookie) and prints each call's two
relay addresses in the line format of examples/media_relay_server.rs:

    <session> <caller relay ip:port> <callee relay ip:port>

then "# ready". Per call: `offer` with the caller's SDP (its far end), whose answer SDP
carries the port the callee sends to; then `answer` with the callee's SDP (its far end),
whose answer SDP carries the port the caller sends to. PCMU (PT 0) and telephone-event
(PT 101), 20 ms, sendrecv: what sentralbord is told for the same calls.

Far ends, as for examples/media_load.rs: session i's caller at --caller-far with the port
raised by 2 * (i mod M), its callee likewise at --callee-far; M = --far-sockets (0: one
per session).

    ng-calls.py --ng 127.0.0.1:2223 --sessions 1000 [--caller-far 127.0.0.2:20000]
                [--callee-far 127.0.0.3:20000] [--far-sockets 0] [--delete]

--delete deletes the calls (call-ids bench-<i>) instead; --self-test checks the bencode
and SDP helpers and exits. Bounded: every request is
retried at most 3 times with a 2 s timeout; the first unanswered or failed request ends
the run with status 1.
"""

import argparse
import os
import socket
import sys


def bencode(value):
    """Encodes str/bytes/int/list/dict (keys sorted, as bencoding requires)."""
    if isinstance(value, bool):
        raise TypeError("no booleans in bencode")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError("cannot bencode %r" % type(value))


def bdecode(data, at=0):
    """Decodes one value at `at`; returns (value, next offset). Strings stay bytes."""
    lead = data[at:at + 1]
    if lead == b"i":
        end = data.index(b"e", at)
        return int(data[at + 1:end]), end + 1
    if lead == b"l":
        at += 1
        items = []
        while data[at:at + 1] != b"e":
            item, at = bdecode(data, at)
            items.append(item)
        return items, at + 1
    if lead == b"d":
        at += 1
        result = {}
        while data[at:at + 1] != b"e":
            key, at = bdecode(data, at)
            result[key], at = bdecode(data, at)
        return result, at + 1
    if lead.isdigit():
        colon = data.index(b":", at)
        length = int(data[at:colon])
        start = colon + 1
        if start + length > len(data):
            raise ValueError("truncated string")
        return data[start:start + length], start + length
    raise ValueError("bad bencode at %d" % at)


def address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def far_end(base, session, far_sockets):
    host, port = base
    return host, port + 2 * (session % far_sockets)


def sdp(host, port, session_id):
    return (
        "v=0\r\n"
        "o=- %d 1 IN IP4 %s\r\n"
        "s=-\r\n"
        "c=IN IP4 %s\r\n"
        "t=0 0\r\n"
        "m=audio %d RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n" % (session_id, host, host, port)
    )


def media_address(body):
    """The connection address and audio port of an SDP body."""
    host = None
    port = None
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("c=IN IP4 ") and host is None:
            host = line.split()[2]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
            break
    if host is None or port is None:
        raise ValueError("no c=/m=audio in the SDP rtpengine answered")
    return "%s:%d" % (host, port)


class Ng:
    def __init__(self, target):
        self.target = target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(2.0)
        self.serial = 0
        self.prefix = "%d_%d" % (os.getpid(), id(self))

    def request(self, message):
        self.serial += 1
        cookie = ("%s_%d" % (self.prefix, self.serial)).encode()
        payload = cookie + b" " + bencode(message)
        for _ in range(3):
            self.sock.sendto(payload, self.target)
            try:
                while True:
                    data, _ = self.sock.recvfrom(65535)
                    reply_cookie, _, body = data.partition(b" ")
                    if reply_cookie == cookie:
                        reply, _ = bdecode(body)
                        return reply
            except socket.timeout:
                continue
        raise TimeoutError("rtpengine did not answer %s" % message.get("command"))


def check(reply, what):
    if reply.get(b"result") != b"ok":
        raise RuntimeError("%s: %r" % (what, reply))
    return reply


def self_test():
    message = {"command": "offer", "call-id": "bench-1", "flags": ["a", "b"], "n": -3}
    encoded = bencode(message)
    assert encoded == b"d7:call-id7:bench-17:command5:offer5:flagsl1:a1:be1:ni-3ee", encoded
    decoded, end = bdecode(encoded)
    assert end == len(encoded)
    assert decoded == {b"call-id": b"bench-1", b"command": b"offer", b"flags": [b"a", b"b"], b"n": -3}
    for broken in (b"5:abc", b"i12", b"x"):
        try:
            bdecode(broken)
        except (ValueError, IndexError):
            continue
        raise AssertionError("accepted %r" % broken)
    body = sdp("127.0.0.2", 20002, 1).replace("127.0.0.2", "127.0.0.1").encode()
    assert media_address(body.replace(b"20002", b"40010")) == "127.0.0.1:40010"
    assert far_end(("127.0.0.2", 20000), 7, 2) == ("127.0.0.2", 20002)
    print("ng-calls self-test: ok")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ng", required=True, help="rtpengine's ng address ip:port")
    parser.add_argument("--sessions", type=int, required=True)
    parser.add_argument("--caller-far", default="127.0.0.2:20000")
    parser.add_argument("--callee-far", default="127.0.0.3:20000")
    parser.add_argument("--far-sockets", type=int, default=0)
    parser.add_argument("--delete", action="store_true")
    args = parser.parse_args()
    sessions = args.sessions
    far_sockets = args.far_sockets if 0 < args.far_sockets <= sessions else sessions
    caller_base = address(args.caller_far)
    callee_base = address(args.callee_far)
    ng = Ng(address(args.ng))
    out = sys.stdout
    try:
        if ng.request({"command": "ping"}).get(b"result") != b"pong":
            raise RuntimeError("rtpengine did not answer ping with pong")
        for i in range(sessions):
            call_id = "bench-%d" % i
            if args.delete:
                ng.request({"command": "delete", "call-id": call_id})
                continue
            caller_host, caller_port = far_end(caller_base, i, far_sockets)
            callee_host, callee_port = far_end(callee_base, i, far_sockets)
            offer = check(ng.request({
                "command": "offer",
                "call-id": call_id,
                "from-tag": "caller-%d" % i,
                "sdp": sdp(caller_host, caller_port, i),
                "ICE": "remove",
            }), "offer %d" % i)
            # The offer SDP rtpengine returns goes to the callee: the callee sends there.
            callee_relay = media_address(offer[b"sdp"])
            answer = check(ng.request({
                "command": "answer",
                "call-id": call_id,
                "from-tag": "caller-%d" % i,
                "to-tag": "callee-%d" % i,
                "sdp": sdp(callee_host, callee_port, i),
                "ICE": "remove",
            }), "answer %d" % i)
            caller_relay = media_address(answer[b"sdp"])
            out.write("%d %s %s\n" % (i, caller_relay, callee_relay))
        out.write("# ready\n")
        out.flush()
    except (OSError, ValueError, RuntimeError, TimeoutError) as error:
        print("ng-calls: %s" % error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
