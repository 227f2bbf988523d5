#!/usr/bin/env python3
"""The agents' phones for scripts/bench-queues.sh: one asyncio process plays every agent.

Each agent is a SIP phone on its own UDP socket (127.0.0.1, an ephemeral port): it
registers with an MD5 digest (the daemon rings the flow a binding came from), then answers
every INVITE: 180 at once, 200 with an SDP answer after --answer-ms (retransmitted until
the ACK), "talks" --talk-ms from the ACK, and hangs up with a BYE (retransmitted until
answered). Nothing sends RTP: the SDP of every phone points at a sink (two sockets, RTP and
RTCP, bound and never read; the kernel drops what overflows them, so the music on hold the
daemon sends never meets a closed port and no ICMP comes back).

The measure: for each agent, t_free = the moment its BYE left (wall clock, just before
sendto), t_ring = the kernel's receive timestamp (SO_TIMESTAMPNS) of the next INVITE. The
difference is the queue engine's and the SIP path's time from "agent free" to "phone
rings", plus two loopback hops; Python's own scheduling does not enter it. One line per
sample goes to --samples: "<t_ring unix s> <latency us> <agent index>".

A probe: --probe-port binds one more RTP/RTCP pair that IS read. The benchmark sends one
extra caller whose SDP points there; every RTP packet it hears (music on hold while it
waits) goes to --probe-file as "<kernel receive unix s> <seq> <timestamp> <ssrc>", so the
music's continuity (missed 20 ms ticks, gaps) can be judged from one caller's ears.

Standard output: "sink <port>" and "probe <port>" once those are bound, "registered <n> <failed>" once every
agent tried to register. The run ends on SIGTERM/SIGINT or after --max-seconds; then a JSON
summary (counters) goes to --summary. Standard library only.
"""

import argparse
import asyncio
import hashlib
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import time

# Linux: SO_TIMESTAMPNS (= SCM_TIMESTAMPNS) gives a struct timespec per datagram.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
TIMESPEC = struct.Struct("@qq")
T1 = 0.5
T2 = 4.0
# An INVITE server transaction or a BYE gives up after 64*T1 (RFC 3261 timers B/F/H).
GIVE_UP = 64 * T1
COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type"}
PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))')


def md5(text):
    return hashlib.md5(text.encode()).hexdigest()


class Message:
    """A parsed SIP message: start line, headers (lower-case names, in order), body."""

    __slots__ = ("start", "headers", "body")

    def __init__(self, data):
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        self.start = lines[0]
        self.headers = []
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                name, value = self.headers[-1]
                self.headers[-1] = (name, value + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            if not sep:
                continue
            name = name.strip().lower()
            self.headers.append((COMPACT.get(name, name), value.strip()))
        self.body = body

    def get(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers if n == name]

    @property
    def is_response(self):
        return self.start.startswith("SIP/2.0 ")

    @property
    def status(self):
        return int(self.start.split(" ", 2)[1])

    @property
    def method(self):
        return self.start.split(" ", 1)[0]

    def cseq(self):
        num, _, method = (self.get("cseq") or "0 X").partition(" ")
        return int(num or 0), method.strip()


def uri_of(name_addr):
    """The URI inside <...> of a name-addr (or the bare value)."""
    m = re.search(r"<([^>]*)>", name_addr or "")
    return m.group(1) if m else (name_addr or "").split(";")[0].strip()


def tag_of(value):
    m = re.search(r";\s*tag=([^;>\s]+)", value or "")
    return m.group(1) if m else None


def offered_pt(body):
    """The first of PCMU (0) / PCMA (8) the SDP offer lists, else 0."""
    m = re.search(rb"m=audio \d+ RTP/AVP ([0-9 ]+)", body or b"")
    if m:
        for pt in m.group(1).split():
            if pt in (b"0", b"8"):
                return int(pt)
    return 0


class Stats:
    def __init__(self):
        self.c = {k: 0 for k in (
            "registered", "register_failed", "invites", "invite_retransmissions",
            "answered", "acked", "byes_sent", "byes_answered", "bye_timeouts",
            "ack_timeouts", "cancelled", "remote_byes", "busy_refused", "other_requests",
            "retransmissions_sent", "parse_errors", "samples")}

    def inc(self, key, n=1):
        self.c[key] += n


class Call:
    """The agent's side of one queue call (we are the UAS)."""

    __slots__ = ("call_id", "invite", "local_tag", "remote", "local", "target", "route",
                 "peer", "ok", "last_response", "retrans_handle", "bye_handle",
                 "answer_handle", "acked", "invite_cseq")


class Agent:
    def __init__(self, sim, idx, user, password):
        self.sim = sim
        self.idx = idx
        self.user = user
        self.password = password
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.call = None
        self.t_free_ns = None
        self.reg_future = None
        self.reg_cseq = 0
        self.reg_call_id = "reg-%d-%d@bench" % (os.getpid(), idx)
        self.byes = {}  # branch -> [message bytes, interval, handle, sent_at]
        self.cseq = random.randint(1, 10000)

    # --- I/O ---------------------------------------------------------------------------
    def send(self, data, addr):
        try:
            self.sock.sendto(data, addr)
        except OSError:
            self.sim.stats.inc("parse_errors")

    def on_readable(self):
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(65535, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            rx_ns = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
                    sec, nsec = TIMESPEC.unpack_from(payload)
                    rx_ns = sec * 1_000_000_000 + nsec
            if rx_ns is None:
                rx_ns = time.time_ns()
            try:
                msg = Message(data)
            except (ValueError, IndexError):
                self.sim.stats.inc("parse_errors")
                continue
            try:
                if msg.is_response:
                    self.on_response(msg)
                else:
                    self.on_request(msg, addr, rx_ns)
            except (ValueError, IndexError, KeyError):
                self.sim.stats.inc("parse_errors")

    # --- registration ------------------------------------------------------------------
    def register_request(self, auth=None):
        self.reg_cseq += 1
        realm = self.sim.realm
        lines = [
            "REGISTER sip:%s SIP/2.0" % realm,
            "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-r%d-%d;rport" % (self.port, self.idx, self.reg_cseq),
            "Max-Forwards: 70",
            "From: <sip:%s@%s>;tag=reg%d" % (self.user, realm, self.idx),
            "To: <sip:%s@%s>" % (self.user, realm),
            "Call-ID: %s" % self.reg_call_id,
            "CSeq: %d REGISTER" % self.reg_cseq,
            "Contact: <sip:%s@127.0.0.1:%d;transport=udp>" % (self.user, self.port),
            "Expires: 3600",
        ]
        if auth:
            lines.append(auth)
        lines += ["Content-Length: 0", "", ""]
        return "\r\n".join(lines).encode()

    def authorization(self, challenge):
        params = {k.lower(): (q if q is not None and q != "" else u) for k, q, u in PARAM.findall(challenge)}
        realm, nonce = params.get("realm", self.sim.realm), params.get("nonce", "")
        uri = "sip:%s" % self.sim.realm
        ha1 = md5("%s:%s:%s" % (self.user, realm, self.password))
        ha2 = md5("REGISTER:%s" % uri)
        parts = ['Digest username="%s"' % self.user, 'realm="%s"' % realm, 'nonce="%s"' % nonce,
                 'uri="%s"' % uri, "algorithm=MD5"]
        if "auth" in [q.strip() for q in params.get("qop", "").split(",")]:
            cnonce = "%08x" % random.getrandbits(32)
            response = md5("%s:%s:00000001:%s:auth:%s" % (ha1, nonce, cnonce, ha2))
            parts += ['response="%s"' % response, 'cnonce="%s"' % cnonce, "qop=auth", "nc=00000001"]
        else:
            parts.append('response="%s"' % md5("%s:%s:%s" % (ha1, nonce, ha2)))
        if "opaque" in params:
            parts.append('opaque="%s"' % params["opaque"])
        return "Authorization: " + ", ".join(parts)

    async def register(self):
        loop = asyncio.get_running_loop()
        request = self.register_request()
        for _attempt in range(6):
            self.reg_future = loop.create_future()
            self.send(request, self.sim.server)
            try:
                msg = await asyncio.wait_for(asyncio.shield(self.reg_future), 2.0)
            except asyncio.TimeoutError:
                continue
            if msg.status == 401:
                challenges = msg.all("www-authenticate")
                md5_ones = [c for c in challenges if "MD5" in c.upper() or "ALGORITHM" not in c.upper()]
                if not md5_ones:
                    break
                request = self.register_request(self.authorization(md5_ones[0]))
                continue
            if 200 <= msg.status < 300:
                self.sim.stats.inc("registered")
                return True
            break
        self.sim.stats.inc("register_failed")
        return False

    # --- responses ---------------------------------------------------------------------
    def on_response(self, msg):
        _num, method = msg.cseq()
        if method == "REGISTER":
            if msg.status >= 200 and self.reg_future is not None and not self.reg_future.done():
                self.reg_future.set_result(msg)
            return
        if method == "BYE" and msg.status >= 200:
            via = msg.get("via") or ""
            m = re.search(r"branch=([^;\s,]+)", via)
            entry = self.byes.pop(m.group(1), None) if m else None
            if entry is not None:
                if entry[2] is not None:
                    entry[2].cancel()
                self.sim.stats.inc("byes_answered")

    # --- requests ----------------------------------------------------------------------
    def reply(self, msg, addr, code, reason, to_tag=None, extra=(), body=b""):
        to = msg.get("to") or ""
        if to_tag and tag_of(to) is None:
            to = to + ";tag=" + to_tag
        lines = ["SIP/2.0 %d %s" % (code, reason)]
        lines += ["Via: " + v for v in msg.all("via")]
        lines += ["Record-Route: " + v for v in msg.all("record-route")]
        lines += ["From: " + (msg.get("from") or ""), "To: " + to,
                  "Call-ID: " + (msg.get("call-id") or ""), "CSeq: " + (msg.get("cseq") or "")]
        lines += list(extra)
        lines.append("Content-Length: %d" % len(body))
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.send(data, addr)
        return data

    def on_request(self, msg, addr, rx_ns):
        method = msg.method
        call_id = msg.get("call-id")
        call = self.call if self.call is not None and self.call.call_id == call_id else None
        if method == "INVITE" and tag_of(msg.get("to")) is None:
            if call is not None:
                # A retransmission of the INVITE being answered: the last response again.
                self.sim.stats.inc("invite_retransmissions")
                if call.last_response is not None:
                    self.send(call.last_response, addr)
                return
            if self.call is not None:
                self.sim.stats.inc("busy_refused")
                self.reply(msg, addr, 486, "Busy Here", to_tag="busy%d" % self.idx)
                return
            self.on_invite(msg, addr, rx_ns)
            return
        if method == "ACK":
            if call is not None and not call.acked and call.ok is not None:
                call.acked = True
                self.sim.stats.inc("acked")
                if call.retrans_handle is not None:
                    call.retrans_handle.cancel()
                    call.retrans_handle = None
                loop = asyncio.get_running_loop()
                call.bye_handle = loop.call_later(self.sim.talk_s, self.hang_up, call)
            elif call is not None and call.ok is None:
                # ACK of our 487 (after a CANCEL).
                self.call = None
            return
        if method == "CANCEL":
            self.reply(msg, addr, 200, "OK")
            if call is not None and call.ok is None:
                self.sim.stats.inc("cancelled")
                if call.answer_handle is not None:
                    call.answer_handle.cancel()
                call.last_response = self.reply(call.invite, addr, 487, "Request Terminated", to_tag=call.local_tag)
                self.call = None
            return
        if method == "BYE":
            self.reply(msg, addr, 200, "OK")
            if call is not None:
                self.sim.stats.inc("remote_byes")
                for h in (call.retrans_handle, call.bye_handle, call.answer_handle):
                    if h is not None:
                        h.cancel()
                self.call = None
            return
        self.sim.stats.inc("other_requests")
        if method == "INVITE" and call is not None:
            # A re-INVITE: accept it with the same answer.
            self.reply(msg, addr, 200, "OK", extra=self.answer_headers(call), body=self.sdp(call))
        elif method in ("OPTIONS", "UPDATE", "INFO", "NOTIFY"):
            self.reply(msg, addr, 200, "OK")
        else:
            self.reply(msg, addr, 501, "Not Implemented")

    def on_invite(self, msg, addr, rx_ns):
        self.sim.stats.inc("invites")
        if self.t_free_ns is not None:
            latency_us = (rx_ns - self.t_free_ns) / 1000.0
            self.sim.sample(rx_ns, latency_us, self.idx)
            self.t_free_ns = None
        call = Call()
        call.call_id = msg.get("call-id")
        call.invite = msg
        call.local_tag = "a%d-%08x" % (self.idx, random.getrandbits(32))
        call.remote = msg.get("from") or ""
        call.local = (msg.get("to") or "") + ";tag=" + call.local_tag
        call.target = uri_of(msg.get("contact")) or "sip:%s:%d" % addr
        call.route = msg.all("record-route")
        call.peer = addr
        call.ok = None
        call.acked = False
        call.retrans_handle = None
        call.bye_handle = None
        call.invite_cseq = msg.cseq()[0]
        self.call = call
        call.last_response = self.reply(msg, addr, 180, "Ringing", to_tag=call.local_tag,
                                        extra=["Contact: <sip:%s@127.0.0.1:%d>" % (self.user, self.port)])
        loop = asyncio.get_running_loop()
        call.answer_handle = loop.call_later(self.sim.answer_s, self.answer, call)

    def answer_headers(self, call):
        return ["Contact: <sip:%s@127.0.0.1:%d>" % (self.user, self.port),
                "Content-Type: application/sdp"]

    def sdp(self, call):
        pt = offered_pt(call.invite.body)
        name = "PCMU" if pt == 0 else "PCMA"
        return ("v=0\r\no=agent%d 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                "m=audio %d RTP/AVP %d\r\na=rtpmap:%d %s/8000\r\na=sendrecv\r\n"
                % (self.idx, self.sim.sink_port, pt, pt, name)).encode()

    def answer(self, call):
        call.answer_handle = None
        if self.call is not call:
            return
        call.ok = self.reply(call.invite, call.peer, 200, "OK", to_tag=call.local_tag,
                             extra=self.answer_headers(call), body=self.sdp(call))
        call.last_response = call.ok
        self.sim.stats.inc("answered")
        call.retrans_handle = asyncio.get_running_loop().call_later(T1, self.retransmit_ok, call, T1, T1)

    def retransmit_ok(self, call, interval, elapsed):
        call.retrans_handle = None
        if self.call is not call or call.acked:
            return
        if elapsed >= GIVE_UP:
            # RFC 3261 timer H: no ACK; hang up anyway so the agent keeps working.
            self.sim.stats.inc("ack_timeouts")
            self.hang_up(call)
            return
        self.send(call.ok, call.peer)
        self.sim.stats.inc("retransmissions_sent")
        interval = min(interval * 2, T2)
        call.retrans_handle = asyncio.get_running_loop().call_later(
            interval, self.retransmit_ok, call, interval, elapsed + interval)

    def hang_up(self, call):
        call.bye_handle = None
        if self.call is not call:
            return
        self.cseq += 1
        branch = "z9hG4bK-b%d-%d" % (self.idx, self.cseq)
        lines = ["BYE %s SIP/2.0" % call.target,
                 "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport" % (self.port, branch),
                 "Max-Forwards: 70"]
        lines += ["Route: " + r for r in call.route]
        lines += ["From: " + call.local, "To: " + call.remote, "Call-ID: " + call.call_id,
                  "CSeq: %d BYE" % self.cseq, "Content-Length: 0", "", ""]
        data = "\r\n".join(lines).encode()
        self.call = None
        # The agent is free from here: the next INVITE's delay is measured from this send.
        self.t_free_ns = time.time_ns()
        self.send(data, call.peer)
        self.sim.stats.inc("byes_sent")
        entry = [data, T1, None, 0.0, call.peer]
        entry[2] = asyncio.get_running_loop().call_later(T1, self.retransmit_bye, branch)
        self.byes[branch] = entry

    def retransmit_bye(self, branch):
        entry = self.byes.get(branch)
        if entry is None:
            return
        data, interval, _h, elapsed, peer = entry
        elapsed += interval
        if elapsed >= GIVE_UP:
            self.byes.pop(branch, None)
            self.sim.stats.inc("bye_timeouts")
            return
        self.send(data, peer)
        self.sim.stats.inc("retransmissions_sent")
        interval = min(interval * 2, T2)
        entry[1], entry[3] = interval, elapsed
        entry[2] = asyncio.get_running_loop().call_later(interval, self.retransmit_bye, branch)


class Simulator:
    def __init__(self, args):
        host, _, port = args.server.rpartition(":")
        self.server = (host, int(port))
        self.realm = args.realm
        self.answer_s = args.answer_ms / 1000.0
        self.talk_s = args.talk_ms / 1000.0
        self.stats = Stats()
        self.samples_file = open(args.samples, "w", buffering=1 << 16)
        self.sinks = []
        for offset in range(50):
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                # A small buffer: it fills at once and the kernel counts what overflows.
                for s in (rtp, rtcp):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                base = args.sink_port + 2 * offset
                rtp.bind(("127.0.0.1", base))
                rtcp.bind(("127.0.0.1", base + 1))
                self.sinks = [rtp, rtcp]
                self.sink_port = base
                break
            except OSError:
                rtp.close()
                rtcp.close()
        if not self.sinks:
            raise SystemExit("no free sink port pair from %d" % args.sink_port)
        self.probe = None
        self.probe_port = None
        self.probe_file = open(args.probe_file, "w", buffering=1 << 16) if args.probe_file else None
        if args.probe_port:
            for offset in range(50):
                rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    base = args.probe_port + 2 * offset
                    rtp.bind(("127.0.0.1", base))
                    rtcp.bind(("127.0.0.1", base + 1))
                except OSError:
                    rtp.close()
                    rtcp.close()
                    continue
                rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                rtp.setblocking(False)
                self.probe = rtp
                self.probe_rtcp = rtcp
                self.probe_port = base
                break
            if self.probe is None:
                raise SystemExit("no free probe port pair from %d" % args.probe_port)
        self.agents = []
        with open(args.users) as f:
            for idx, line in enumerate(l for l in f if l.strip()):
                user, password = line.split()[:2]
                self.agents.append(Agent(self, idx, user, password))

    def sample(self, rx_ns, latency_us, idx):
        self.stats.inc("samples")
        self.samples_file.write("%.6f %.1f %d\n" % (rx_ns / 1e9, latency_us, idx))

    def on_probe(self):
        while True:
            try:
                data, anc, _flags, _addr = self.probe.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            rx_ns = None
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
                    sec, nsec = TIMESPEC.unpack_from(payload)
                    rx_ns = sec * 1_000_000_000 + nsec
            if rx_ns is None:
                rx_ns = time.time_ns()
            # RTP version 2, not RTCP (payload types 200-204 with the marker bit).
            if len(data) < 12 or data[0] >> 6 != 2 or 72 <= (data[1] & 0x7F) <= 76:
                continue
            seq, ts, ssrc = struct.unpack_from("!HII", data, 2)
            if self.probe_file is not None:
                self.probe_file.write("%.6f %d %d %d\n" % (rx_ns / 1e9, seq, ts, ssrc))

    async def run(self, max_seconds, summary):
        loop = asyncio.get_running_loop()
        for a in self.agents:
            loop.add_reader(a.sock.fileno(), a.on_readable)
        print("sink %d" % self.sink_port, flush=True)
        if self.probe is not None:
            loop.add_reader(self.probe.fileno(), self.on_probe)
            print("probe %d" % self.probe_port, flush=True)
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        limit = asyncio.Semaphore(32)

        async def one(agent):
            async with limit:
                return await agent.register()

        started = time.monotonic()
        await asyncio.gather(*(one(a) for a in self.agents))
        c = self.stats.c
        print("registered %d %d %.1f" % (c["registered"], c["register_failed"], time.monotonic() - started), flush=True)
        try:
            await asyncio.wait_for(stop.wait(), max_seconds)
        except asyncio.TimeoutError:
            pass
        self.samples_file.flush()
        if self.probe_file is not None:
            self.probe_file.flush()
        out = dict(c)
        out["agents"] = len(self.agents)
        out["busy_now"] = sum(1 for a in self.agents if a.call is not None)
        with open(summary, "w") as f:
            json.dump(out, f)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", required=True, help="the phones profile's UDP address, host:port")
    p.add_argument("--realm", required=True)
    p.add_argument("--users", required=True, help="file: one 'username password' a line")
    p.add_argument("--sink-port", type=int, required=True, help="first even port to try for the RTP sink")
    p.add_argument("--answer-ms", type=int, default=100)
    p.add_argument("--talk-ms", type=int, default=3000)
    p.add_argument("--samples", required=True)
    p.add_argument("--summary", required=True)
    p.add_argument("--max-seconds", type=float, default=600)
    p.add_argument("--probe-port", type=int, default=0, help="first even port to try for the probe (0: none)")
    p.add_argument("--probe-file", default="")
    args = p.parse_args()
    sim = Simulator(args)
    asyncio.run(sim.run(args.max_seconds, args.summary))


if __name__ == "__main__":
    sys.exit(main())
