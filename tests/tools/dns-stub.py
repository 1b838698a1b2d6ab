#!/usr/bin/env python3
# NAME
#	dns-stub.py - a tiny authoritative DNS server for tests
# SYNOPSIS
#	dns-stub.py -p PORT [-a ADDRESS]... [-z ZONEFILE] [-l LOGFILE]
#	    [-r READYFILE] [RECORD]...
# DESCRIPTION
#	Answers queries over UDP and TCP on PORT of each ADDRESS (default
#	127.0.0.1; give -a ::1 as well for IPv6) from a zone given as
#	RECORD arguments and/or the lines of ZONEFILE, one record a line,
#	"#" starting a comment:
#		NAME A 192.0.2.1
#		NAME AAAA 2001:db8::1
#		NAME MX PREF TARGET	(TARGET "." is a null MX)
#		NAME CNAME TARGET
#		NAME TXT TEXT
#		NAME SERVFAIL [TYPE]	answer SERVFAIL (for TYPE only)
#		NAME REFUSED [TYPE]	answer REFUSED
#		NAME DROP [TYPE]	never answer (a server that times out)
#	Names are case-insensitive, with or without a final dot. A name
#	that appears in no line is NXDOMAIN; a name that has records, but
#	none of the type asked, is NODATA. CNAMEs are followed within the
#	zone. A UDP answer over 512 octets is sent truncated (TC), so the
#	client retries over TCP.
#
#	Each query is logged to LOGFILE as "PROTO NAME TYPE RESULT".
#	READYFILE is created once every socket listens, and holds the port
#	(one line); it appears whole (written aside, then renamed).
#	With -p 0 the stub picks a port that is free for UDP and TCP on
#	every ADDRESS itself: no other program can take it between a test's
#	choice and the bind, as with a port chosen beforehand.
#
#	A test tool: Python 3 standard library only; the DNS encoding is
#	written out by hand (RFC 1035 sections 4.1 and 4.2).
# DIAGNOSTICS
#	Exits 2 on a bad zone line or when a socket cannot be bound.

import argparse
import ipaddress
import os
import socket
import socketserver
import struct
import sys
import threading

TYPES = {'A': 1, 'CNAME': 5, 'MX': 15, 'TXT': 16, 'AAAA': 28}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
ACTIONS = ('SERVFAIL', 'REFUSED', 'DROP')
RCODE_NOERROR, RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, \
    RCODE_NOTIMP, RCODE_REFUSED = 0, 1, 2, 3, 4, 5
RCODES = {'SERVFAIL': RCODE_SERVFAIL, 'REFUSED': RCODE_REFUSED}
CLASS_IN = 1
TTL = 300
UDP_MAX = 512
CNAME_DEPTH = 8


def norm(name):
    """norm - the zone key of a name: lower case, no final dot"""
    n = name.lower().rstrip('.')
    return n if n else '.'


class Zone:
    """Zone - records and special actions, from text lines"""

    def __init__(self):
        self.rrs = {}		# (name, type) -> [rdata text]
        self.names = set()	# every name that exists
        self.actions = {}	# (name, type or None) -> action

    def add(self, line):
        """add - one zone line; raises ValueError when malformed"""
        f = line.split('#', 1)[0].split()
        if not f:
            return
        if len(f) < 2:
            raise ValueError('need NAME TYPE ...: %r' % line)
        name, kind = norm(f[0]), f[1].upper()
        if kind in ACTIONS:
            if len(f) > 3 or (len(f) == 3 and f[2].upper() not in TYPES):
                raise ValueError('bad action line: %r' % line)
            qt = TYPES[f[2].upper()] if len(f) == 3 else None
            self.actions[(name, qt)] = kind
            return
        if kind not in TYPES:
            raise ValueError('unknown type %s' % kind)
        data = f[2:]
        if kind == 'A':
            ipaddress.IPv4Address(data[0])
        elif kind == 'AAAA':
            ipaddress.IPv6Address(data[0])
        elif kind == 'MX':
            if len(data) != 2 or not data[0].isdigit():
                raise ValueError('MX needs PREF TARGET: %r' % line)
        elif kind == 'CNAME':
            if len(data) != 1:
                raise ValueError('CNAME needs TARGET: %r' % line)
        if not data:
            raise ValueError('no data: %r' % line)
        self.names.add(name)
        self.rrs.setdefault((name, TYPES[kind]), []).append(' '.join(data))

    def lookup(self, qname, qtype):
        """lookup - (action or None, rcode, [(owner, type, rdata)])"""
        name = norm(qname)
        act = self.actions.get((name, qtype)) or \
            self.actions.get((name, None))
        if act:
            return act, None, []
        answers = []
        cur = name
        for _ in range(CNAME_DEPTH):
            cn = self.rrs.get((cur, TYPES['CNAME']))
            if not cn or qtype == TYPES['CNAME']:
                break
            answers.append((cur, TYPES['CNAME'], cn[0]))
            cur = norm(cn[0])
        for d in self.rrs.get((cur, qtype), []):
            answers.append((cur, qtype, d))
        if cur not in self.names:
            return None, RCODE_NXDOMAIN, answers
        return None, RCODE_NOERROR, answers


class Writer:
    """Writer - a DNS message with name compression (RFC 1035 4.1.4)"""

    def __init__(self):
        self.buf = bytearray()
        self.offsets = {}

    def name(self, name):
        """name - append a domain name, pointing at a known suffix"""
        labels = [] if name in ('', '.') else name.rstrip('.').split('.')
        for i in range(len(labels)):
            key = '.'.join(labels[i:]).lower()
            if key in self.offsets:
                self.buf += struct.pack('!H', 0xC000 | self.offsets[key])
                return
            if len(self.buf) < 0x3FFF:
                self.offsets[key] = len(self.buf)
            lab = labels[i].encode('ascii')
            self.buf += bytes([len(lab)]) + lab
        self.buf.append(0)

    def rr(self, owner, qtype, data):
        """rr - append one resource record"""
        self.name(owner)
        self.buf += struct.pack('!HHI', qtype, CLASS_IN, TTL)
        at = len(self.buf)
        self.buf += b'\0\0'
        if qtype == TYPES['A']:
            self.buf += ipaddress.IPv4Address(data).packed
        elif qtype == TYPES['AAAA']:
            self.buf += ipaddress.IPv6Address(data).packed
        elif qtype == TYPES['MX']:
            pref, target = data.split()
            self.buf += struct.pack('!H', int(pref))
            self.name(target)
        elif qtype == TYPES['CNAME']:
            self.name(data)
        elif qtype == TYPES['TXT']:
            t = data.encode('ascii')[:255]
            self.buf += bytes([len(t)]) + t
        struct.pack_into('!H', self.buf, at, len(self.buf) - at - 2)


def parse_question(msg):
    """parse_question - (id, flags, qname, qtype, question bytes) or None"""
    if len(msg) < 12:
        return None
    qid, flags, qd = struct.unpack('!HHH', msg[:6])
    if qd != 1:
        return qid, flags, None, None, b''
    labels, i = [], 12
    while True:
        if i >= len(msg):
            return qid, flags, None, None, b''
        n = msg[i]
        if n == 0:
            i += 1
            break
        if n & 0xC0:
            return qid, flags, None, None, b''
        labels.append(msg[i + 1:i + 1 + n].decode('ascii', 'replace'))
        i += 1 + n
    if i + 4 > len(msg):
        return qid, flags, None, None, b''
    qtype, _ = struct.unpack('!HH', msg[i:i + 4])
    return qid, flags, '.'.join(labels) or '.', qtype, msg[12:i + 4]


def answer(zone, msg, proto, log):
    """answer - the reply to one query message, or None to stay silent"""
    q = parse_question(msg)
    if q is None:
        return None
    qid, flags, qname, qtype, question = q
    rd = flags & 0x0100
    opcode = (flags >> 11) & 0xF
    if qname is None:
        rcode, act, answers = RCODE_FORMERR, None, []
    elif opcode != 0:
        rcode, act, answers = RCODE_NOTIMP, None, []
    else:
        act, rcode, answers = zone.lookup(qname, qtype)
    tname = TYPE_NAMES.get(qtype, str(qtype))
    if act == 'DROP':
        log('%s %s %s DROP' % (proto, qname, tname))
        return None
    if act:
        rcode = RCODES[act]
    w = Writer()
    w.buf += struct.pack('!HHHHHH', qid, 0, 1 if question else 0,
                         len(answers), 0, 0)
    if question:
        w.offsets[norm(qname)] = 12
        w.buf += question
    for owner, t, d in answers:
        w.rr(owner, t, d)
    tc = 0
    if proto == 'udp' and len(w.buf) > UDP_MAX:
        tc = 0x0200
        del w.buf[12 + len(question):]
        struct.pack_into('!H', w.buf, 6, 0)
    # QR, AA, RA; RD copied
    struct.pack_into('!H', w.buf, 2, 0x8000 | 0x0400 | tc | rd | 0x0080 |
                     rcode)
    log('%s %s %s %s%s' % (proto, qname, tname,
                           act or {0: 'NOERROR', 1: 'FORMERR',
                                   3: 'NXDOMAIN', 4: 'NOTIMP'}[rcode],
                           ' TC' if tc else ''))
    return bytes(w.buf)


def main():
    """main - parse the zone, bind, serve until killed"""
    ap = argparse.ArgumentParser(description='a tiny DNS server for tests')
    ap.add_argument('-p', '--port', type=int, required=True)
    ap.add_argument('-a', '--address', action='append')
    ap.add_argument('-z', '--zone')
    ap.add_argument('-l', '--log')
    ap.add_argument('-r', '--ready')
    ap.add_argument('records', nargs='*')
    args = ap.parse_args()

    zone = Zone()
    lines = []
    if args.zone:
        with open(args.zone, encoding='ascii') as f:
            lines += f.read().splitlines()
    lines += args.records
    for line in lines:
        try:
            zone.add(line)
        except (ValueError, IndexError) as e:
            print('dns-stub: %s' % e, file=sys.stderr)
            sys.exit(2)

    lock = threading.Lock()
    logf = open(args.log, 'a', encoding='ascii') if args.log else None

    def log(text):
        if logf:
            with lock:
                logf.write(text + '\n')
                logf.flush()

    class UDPHandler(socketserver.BaseRequestHandler):
        def handle(self):
            data, sock = self.request
            reply = answer(zone, data, 'udp', log)
            if reply is not None:
                sock.sendto(reply, self.client_address)

    class TCPHandler(socketserver.BaseRequestHandler):
        def handle(self):
            s = self.request
            buf = b''
            while True:
                try:
                    chunk = s.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                buf += chunk
                while len(buf) >= 2:
                    n = struct.unpack('!H', buf[:2])[0]
                    if len(buf) < 2 + n:
                        break
                    msg, buf = buf[2:2 + n], buf[2 + n:]
                    reply = answer(zone, msg, 'tcp', log)
                    if reply is not None:
                        s.sendall(struct.pack('!H', len(reply)) + reply)

    def bind_all(port):
        """bind_all - UDP and TCP servers on PORT of every address; with
        port 0, the port the first socket got is used for the rest"""
        servers = []
        for addr in args.address or ['127.0.0.1']:
            fam = socket.AF_INET6 if ':' in addr else socket.AF_INET

            class U(socketserver.ThreadingUDPServer):
                address_family = fam
                allow_reuse_address = True
                daemon_threads = True

            class T(socketserver.ThreadingTCPServer):
                address_family = fam
                allow_reuse_address = True
                daemon_threads = True
            try:
                servers.append(U((addr, port), UDPHandler))
                port = servers[-1].server_address[1]
                servers.append(T((addr, port), TCPHandler))
            except OSError as e:
                for s in servers:
                    s.server_close()
                raise OSError('%s port %d: %s' % (addr, port, e)) from e
        return servers, port

    tries = 50 if args.port == 0 else 1
    for i in range(tries):
        try:
            servers, port = bind_all(args.port)
            break
        except OSError as e:
            if i == tries - 1:
                print('dns-stub: %s' % e, file=sys.stderr)
                sys.exit(2)
    threads = [threading.Thread(target=s.serve_forever, daemon=True)
               for s in servers]
    for t in threads:
        t.start()
    if args.ready:
        tmp = args.ready + '.tmp'
        with open(tmp, 'w', encoding='ascii') as f:
            f.write('%d\n' % port)
        os.rename(tmp, args.ready)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
