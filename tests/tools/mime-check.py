#!/usr/bin/env python3
# NAME
#	mime-check - check a 7-bit downgrade against its 8-bit original
# SYNOPSIS
#	mime-check.py DOWNGRADED ORIGINAL
# DESCRIPTION
#	An oracle for turn_mime_downgrade() built on Python's own email
#	package (stdlib only). DOWNGRADED must be:
#	- 7-bit: every octet below 128, no NUL, every line ending in CRLF
#	  (no bare CR or LF), no line over 998 octets; every line that we
#	  encoded (quoted-printable or base64 where the original was not)
#	  at most 76 octets;
#	- clean: email.message_from_bytes(policy=email.policy.default)
#	  finds no defect in any part nor in any header field;
#	- the same message: the same tree of content types, the same
#	  decoded payload in every leaf (CRLF and LF taken as equal), the
#	  same header fields in the same order (MIME-Version, Content-Type
#	  and Content-Transfer-Encoding may be added), and each field the
#	  same text once decoded: 8-bit original text is read as UTF-8
#	  when valid, else in the part's charset, else as unknown octets,
#	  which is what turn_mime names. Address fields compare as
#	  (display name, address) lists, Content-Type and
#	  Content-Disposition as their parameters (RFC 2231 decoded),
#	  other fields with white space runs taken as one space.
#	Prints each problem and exits 1 when there is any, 0 otherwise.
import codecs
import email
import email.errors
import email.header
import email.headerregistry
import email.policy
from email import _header_value_parser as hvp
import re
import sys

ADDRESS = {'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'resent-from',
           'resent-sender', 'resent-to', 'resent-cc', 'resent-bcc',
           'mail-followup-to', 'mail-reply-to'}
PARAMS = {'content-type', 'content-disposition'}
MAY_ADD = {'mime-version', 'content-type', 'content-transfer-encoding'}
LINE_MAX = 998
ENC_LINE = 76

problems = []


def fail(text):
    """fail - record one problem"""
    problems.append(text)


def check_octets(data):
    """check_octets - 7-bit, CRLF only, lines of at most 998 octets"""
    for i, b in enumerate(data):
        if b >= 128 or b == 0:
            fail('octet %d at offset %d' % (b, i))
            return
    if data and not data.endswith(b'\r\n'):
        fail('the text does not end in CRLF')
    for n, line in enumerate(data.split(b'\r\n'), 1):
        if b'\r' in line or b'\n' in line:
            fail('line %d: bare CR or LF' % n)
            return
        if len(line) > LINE_MAX:
            fail('line %d: %d octets' % (n, len(line)))


def unfold(value):
    """unfold - a raw header value without its folds"""
    return re.sub(r'\r?\n(?=[ \t])', '', value).strip()


def squash(text):
    """squash - white space runs as one space"""
    return ' '.join(text.split())


def orig_text(raw, charset):
    """orig_text - 8-bit header text decoded as turn_mime labels it"""
    b = raw.encode('ascii', 'surrogateescape')
    try:
        return b.decode('utf-8')
    except UnicodeDecodeError:
        pass
    if charset:
        try:
            codecs.lookup(charset)
            return b.decode(charset)
        except (LookupError, UnicodeDecodeError):
            pass
    return b.decode('ascii', 'surrogateescape')


def exact_text(raw):
    """exact_text - a field's decoded text, unknown-8bit octets kept"""
    out = []
    for chunk, charset in email.header.decode_header(unfold(raw)):
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        try:
            out.append(chunk.decode(charset or 'ascii', 'surrogateescape'))
        except LookupError:
            out.append(chunk.decode('ascii', 'surrogateescape'))
    return ' '.join(out)


def addresses(header):
    """addresses - (display name, address) pairs of an address field"""
    return [(squash(a.display_name), a.addr_spec) for a in header.addresses]


def compare_header(where, name, raw, new, new_raw, charset):
    """compare_header - one field of the original against the downgrade"""
    lname = name.lower()
    text = orig_text(unfold(raw), charset)
    if lname in ADDRESS:
        want = email.policy.default.header_factory(name, text)
        if addresses(new) != addresses(want):
            fail('%s: %s: %r, want %r' % (where, name, addresses(new),
                                          addresses(want)))
    elif lname in PARAMS:
        want = email.policy.default.header_factory(name, text)
        got_p, want_p = dict(new.params), dict(want.params)
        if lname == 'content-type':
            got_p.pop('charset', None)
            want_p.pop('charset', None)
        if got_p != want_p:
            fail('%s: %s parameters %r, want %r' % (where, name, got_p,
                                                    want_p))
    elif lname == 'content-transfer-encoding':
        if str(new).lower() not in ('7bit', 'quoted-printable', 'base64') \
                and squash(str(new)) != squash(text):
            fail('%s: %s: %r' % (where, name, str(new)))
    else:
        got = str(new)
        if '\ufffd' in got:
            # unknown-8bit: str() made the octets U+FFFD
            got = exact_text(new_raw)
        if squash(got) != squash(text):
            fail('%s: %s: %r, want %r' % (where, name, got, text))


def compare_part(where, o, n):
    """compare_part - headers and payload of one part"""
    onames = [k for k, v in o._headers]
    nnames = [k for k, v in n._headers]
    if [k.lower() for k in onames if k.lower() not in MAY_ADD] != \
            [k.lower() for k in nnames if k.lower() not in MAY_ADD]:
        fail('%s: fields %r, want %r' % (where, nnames, onames))
    for k in onames:
        if k.lower() in MAY_ADD and k.lower() not in \
                [x.lower() for x in nnames]:
            fail('%s: %s is gone' % (where, k))
    charset = o.get_param('charset')
    nitems = list(n._headers)
    for k, raw in o._headers:
        # the first field of that name that is left, in order
        for i, (nk, nv) in enumerate(nitems):
            if nk.lower() == k.lower():
                del nitems[i]
                break
        else:
            continue
        newh = email.policy.default.header_fetch_parse(nk, nv)
        compare_header(where, k, raw, newh, nv, charset)
    if o.get_content_type() != n.get_content_type():
        fail('%s: type %s, want %s' % (where, n.get_content_type(),
                                       o.get_content_type()))
    if o.is_multipart() != n.is_multipart():
        fail('%s: multipart differs' % where)
        return
    if o.is_multipart():
        op, np_ = o.get_payload(), n.get_payload()
        if len(op) != len(np_):
            fail('%s: %d parts, want %d' % (where, len(np_), len(op)))
        for i, (a, b) in enumerate(zip(op, np_)):
            compare_part('%s.%d' % (where, i + 1), a, b)
        return
    got = (n.get_payload(decode=True) or b'').replace(b'\r\n', b'\n')
    want = (o.get_payload(decode=True) or b'').replace(b'\r\n', b'\n')
    if got != want:
        fail('%s: payload differs: %r... want %r...' % (where, got[:60],
                                                         want[:60]))
    octe = str(o.get('content-transfer-encoding', '')).strip().lower()
    ncte = str(n.get('content-transfer-encoding', '')).strip().lower()
    if ncte in ('quoted-printable', 'base64') and octe != ncte:
        body = n.get_payload(decode=False)
        for line in body.splitlines():
            if len(line) > ENC_LINE:
                fail('%s: %s line of %d octets' % (where, ncte, len(line)))
                break


def check_defects(msg):
    """check_defects - no defect in any part or header field"""
    for i, part in enumerate(msg.walk()):
        for d in part.defects:
            fail('part %d: %s' % (i, type(d).__name__))
        for k, raw in part._headers:
            v = email.policy.default.header_fetch_parse(k, raw)
            defects = list(getattr(v, 'defects', ()))
            if isinstance(v, email.headerregistry.UnstructuredHeader):
                # the registry keeps no defects of unstructured fields
                defects += hvp.get_unstructured(unfold(raw)).all_defects
            for d in defects:
                # RFC 1428 unknown-8bit octets are undecodable by design
                if isinstance(d, email.errors.UndecodableBytesDefect) and \
                        '?unknown-8bit?' in str(raw).lower():
                    continue
                fail('part %d: %s: %s %s' % (i, k, type(d).__name__, d))


def main():
    """main - check argv[1] against argv[2]"""
    if len(sys.argv) != 3:
        sys.stderr.write('usage: mime-check.py DOWNGRADED ORIGINAL\n')
        return 2
    with open(sys.argv[1], 'rb') as f:
        new = f.read()
    with open(sys.argv[2], 'rb') as f:
        orig = f.read()
    check_octets(new)
    check_defects(email.message_from_bytes(new, policy=email.policy.default))
    o = email.message_from_bytes(orig, policy=email.policy.compat32)
    n = email.message_from_bytes(new, policy=email.policy.compat32)
    compare_part('message', o, n)
    for p in problems:
        print('mime-check: %s' % p)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
