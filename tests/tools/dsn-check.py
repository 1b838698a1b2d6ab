#!/usr/bin/env python3
# NAME
#	dsn-check.py - check a DSN built by turn_dsn (RFC 3461, 3464, 6522)
# SYNOPSIS
#	dsn-check.py DSN [--original FILE] [--kind failure|delay|success]
#	    [--sender ADDR] [--rcpts N] [--return full|headers|none]
#	    [--envid TEXT] [--global] [--eightbit] [--repaired]
#	    [--field WHERE:NAME=VALUE]... [--no-field WHERE:NAME]...
#	    [--text SUBSTRING]...
# DESCRIPTION
#	Parses the DSN twice: with Python's email package (no defects
#	anywhere, and its own reading of message/delivery-status must
#	agree), and by hand, octet by octet, to compare the returned
#	content with the original exactly. It checks:
#	- the octets: CRLF line ends only, no line over 998 octets, no NUL;
#	  no 8-bit octet unless --eightbit, which wants one and
#	  "Content-Transfer-Encoding: 8bit" at the top;
#	- the top-level fields: From MAILER-DAEMON, To the sender, the
#	  Subject of the kind, a parseable Date, a Message-ID,
#	  Auto-Submitted: auto-replied (RFC 3834), MIME-Version, and
#	  multipart/report with report-type=delivery-status
#	  (global-delivery-status with --global, RFC 6533);
#	- the parts: text/plain, message/delivery-status, then (unless
#	  --return none) message/rfc822 for --return full, whose content is
#	  the original with CRLF line ends, or text/rfc822-headers for
#	  --return headers, whose content is the original's header section
#	  (with --repaired only fields of it, as long lines were folded);
#	  the global types with --global; no part contains the boundary,
#	  nor does the original;
#	- the delivery-status fields (RFC 3464 section 2): Reporting-MTA,
#	  Arrival-Date, Original-Envelope-Id equal to --envid (absent
#	  without it), and for each of --rcpts recipients Final-Recipient,
#	  Action, a Status of the action's class, and well-formed optional
#	  fields, Will-Retry-Until only for "delayed"; no field twice.
#	WHERE in --field and --no-field is "msg" for the per-message
#	fields or a recipient's index from 0. --text wants a substring of
#	the human-readable part, its lines unwrapped.
# DIAGNOSTICS
#	Exit 0 and "ok: ..." when every check passes; 1 and one line per
#	problem otherwise; 2 on usage errors.

import argparse
import email
import email.policy
import email.utils
import re
import sys

LINE_MAX = 998
SUBJECTS = {
    'failure': 'Undelivered Mail Returned to Sender',
    'delay': 'Delayed Mail (still being retried)',
    'success': 'Successful Mail Delivery Report',
}
ACTION_CLASS = {
    'failed': '45', 'delayed': '4', 'delivered': '2', 'relayed': '2',
    'expanded': '2',
}
STATUS_RE = re.compile(r'^[245]\.\d{1,3}\.\d{1,3}$')
DATE_FIELDS = ('Arrival-Date', 'Last-Attempt-Date', 'Will-Retry-Until')

problems = []


def bad(text):
    """bad - record one problem"""
    problems.append(text)


def check_octets(raw, eightbit):
    """check_octets - CRLF only, lines <= 998, no NUL, 7-bit unless 8bit"""
    if b'\0' in raw:
        bad('NUL octet in the DSN')
    if not raw.endswith(b'\r\n'):
        bad('the DSN does not end in CRLF')
    for n, line in enumerate(raw.split(b'\r\n'), 1):
        if b'\r' in line or b'\n' in line:
            bad('bare CR or LF on line %d' % n)
        if len(line) > LINE_MAX:
            bad('line %d has %d octets' % (n, len(line)))
    has8 = any(b >= 0x80 for b in raw)
    if has8 and not eightbit:
        bad('8-bit octets in a DSN that should be 7-bit')
    if eightbit and not has8:
        bad('no 8-bit octet in a DSN said to be 8-bit')


def split_head(block):
    """split_head - header section and content of an entity"""
    if block.startswith(b'\r\n'):
        return b'', block[2:]
    i = block.find(b'\r\n\r\n')
    if i < 0:
        return block, b''
    return block[:i + 2], block[i + 4:]


def fields(head):
    """fields - [(name, value)] of a header section, unfolded"""
    out = []
    for line in head.decode('utf-8', 'replace').split('\r\n'):
        if line == '':
            continue
        if line[0] in ' \t':
            if not out:
                bad('continuation line first: %r' % line[:40])
                continue
            out[-1] = (out[-1][0], out[-1][1] + line)
            continue
        name, sep, value = line.partition(':')
        if not sep:
            bad('not a header field: %r' % line[:40])
            continue
        out.append((name.strip(), value.strip()))
    return out


def field_map(flist, what):
    """field_map - the fields by lower-case name; no field twice"""
    m = {}
    for name, value in flist:
        if name.lower() in m:
            bad('%s: %s twice' % (what, name))
        m[name.lower()] = value
    return m


def check_date(value, what):
    """check_date - an RFC 5322 date"""
    try:
        if email.utils.parsedate_to_datetime(value) is None:
            raise ValueError(value)
    except (TypeError, ValueError, IndexError):
        bad('%s: bad date %r' % (what, value))


def normalize(data):
    """normalize - CRLF line ends, the last line ended"""
    lines = data.split(b'\n')
    if lines and lines[-1] == b'':
        lines.pop()
    out = b''
    for line in lines:
        if line.endswith(b'\r'):
            line = line[:-1]
        out += line + b'\r\n'
    return out


def header_section(data):
    """header_section - the original's header lines, CRLF, no empty line"""
    out = b''
    for line in normalize(data).split(b'\r\n')[:-1]:
        if line == b'':
            break
        out += line + b'\r\n'
    return out


def check_top(msg, top, args):
    """check_top - the top-level header fields"""
    want_type = 'global-delivery-status' if args.glob else 'delivery-status'
    if msg.get_content_type() != 'multipart/report':
        bad('top-level type %s' % msg.get_content_type())
    if msg.get_param('report-type') != want_type:
        bad('report-type %r, want %r' % (msg.get_param('report-type'),
                                         want_type))
    if top.get('mime-version') != '1.0':
        bad('MIME-Version %r' % top.get('mime-version'))
    if top.get('auto-submitted', '').lower() != 'auto-replied':
        bad('Auto-Submitted %r' % top.get('auto-submitted'))
    if not re.search(r'<MAILER-DAEMON@[^<>\s]+>$', top.get('from', '')):
        bad('From %r' % top.get('from'))
    if args.sender is not None and top.get('to') != '<%s>' % args.sender:
        bad('To %r, want <%s>' % (top.get('to'), args.sender))
    if top.get('subject') != SUBJECTS[args.kind]:
        bad('Subject %r' % top.get('subject'))
    check_date(top.get('date', ''), 'Date')
    if not re.match(r'^<[^<>@\s]+@[^<>@\s]+>$', top.get('message-id', '')):
        bad('Message-ID %r' % top.get('message-id'))
    if args.eightbit and top.get('content-transfer-encoding') != '8bit':
        bad('8-bit DSN without Content-Transfer-Encoding: 8bit')


def check_status(content, args, parsed):
    """check_status - the message/delivery-status fields"""
    blocks = [b for b in content.split(b'\r\n\r\n') if b.strip(b'\r\n')]
    if not blocks:
        bad('empty delivery-status part')
        return
    groups = [field_map(fields(b + b'\r\n'), 'delivery-status')
              for b in blocks]
    per_msg, rcpts = groups[0], groups[1:]
    if parsed is not None and len(parsed) != len(groups):
        bad('email reads %d delivery-status groups, we read %d'
            % (len(parsed), len(groups)))
    if not re.match(r'^dns; ?\S+$', per_msg.get('reporting-mta', '')):
        bad('Reporting-MTA %r' % per_msg.get('reporting-mta'))
    if 'final-recipient' in per_msg:
        bad('the first group is not the per-message one')
    if args.envid is not None:
        if per_msg.get('original-envelope-id') != args.envid:
            bad('Original-Envelope-Id %r, want %r'
                % (per_msg.get('original-envelope-id'), args.envid))
    elif 'original-envelope-id' in per_msg:
        bad('Original-Envelope-Id without ENVID')
    if 'arrival-date' in per_msg:
        check_date(per_msg['arrival-date'], 'Arrival-Date')
    if args.rcpts is not None and len(rcpts) != args.rcpts:
        bad('%d recipient groups, want %d' % (len(rcpts), args.rcpts))
    for i, r in enumerate(rcpts):
        what = 'recipient %d' % i
        if not re.match(r'^(rfc822|utf-8); ?\S', r.get('final-recipient',
                                                        '')):
            bad('%s: Final-Recipient %r' % (what, r.get('final-recipient')))
        action = r.get('action', '')
        if action not in ACTION_CLASS:
            bad('%s: Action %r' % (what, action))
            continue
        status = r.get('status', '')
        if not STATUS_RE.match(status):
            bad('%s: Status %r' % (what, status))
        elif status[0] not in ACTION_CLASS[action]:
            bad('%s: Status %s with Action %s' % (what, status, action))
        if 'remote-mta' in r and not re.match(r'^dns; ?\S+$',
                                              r['remote-mta']):
            bad('%s: Remote-MTA %r' % (what, r['remote-mta']))
        if 'diagnostic-code' in r and not re.match(
                r'^(smtp|X-[A-Za-z0-9-]+); ?\S', r['diagnostic-code']):
            bad('%s: Diagnostic-Code %r' % (what, r['diagnostic-code']))
        if 'original-recipient' in r and not re.match(
                r'^[A-Za-z0-9-]+; ?\S', r['original-recipient']):
            bad('%s: Original-Recipient %r' % (what,
                                              r['original-recipient']))
        for name in DATE_FIELDS:
            if name.lower() in r:
                check_date(r[name.lower()], '%s: %s' % (what, name))
        if 'will-retry-until' in r and action != 'delayed':
            bad('%s: Will-Retry-Until with Action %s' % (what, action))
    for spec in args.field:
        where, _, nv = spec.partition(':')
        name, _, value = nv.partition('=')
        g = per_msg if where == 'msg' else (
            rcpts[int(where)] if int(where) < len(rcpts) else {})
        if g.get(name.lower()) != value:
            bad('%s %s: %r, want %r' % (where, name, g.get(name.lower()),
                                        value))
    for spec in args.no_field:
        where, _, name = spec.partition(':')
        g = per_msg if where == 'msg' else (
            rcpts[int(where)] if int(where) < len(rcpts) else {})
        if name.lower() in g:
            bad('%s: unwanted %s: %r' % (where, name, g[name.lower()]))


def check_returned(ptype, pfields, content, args, original, part):
    """check_returned - the third part against the original"""
    if args.ret == 'full':
        want = 'message/global' if args.glob else 'message/rfc822'
        if ptype != want:
            bad('third part is %s, want %s' % (ptype, want))
        if original is not None and content != normalize(original):
            bad('returned message differs from the original')
        if not args.glob:
            inner = part.get_payload()
            if not isinstance(inner, list) or len(inner) != 1:
                bad('email does not read the message/rfc822 part')
            elif original is not None:
                orig = email.message_from_bytes(original)
                if inner[0].items() != orig.items():
                    bad('returned header fields differ')
    else:
        want = ('message/global-headers' if args.glob
                else 'text/rfc822-headers')
        if ptype != want:
            bad('third part is %s, want %s' % (ptype, want))
        if original is None:
            return
        hdrs = header_section(original)
        if not args.repaired and content != hdrs:
            bad('returned header section differs from the original')
        if args.repaired:
            names = [n for n, _ in fields(content)]
            for n, _ in fields(hdrs):
                if n not in names:
                    bad('returned header section lost %s' % n)
        if b'\r\n\r\n' in content:
            bad('the returned header section holds an empty line')
    if any(b >= 0x80 for b in content) and \
            pfields.get('content-transfer-encoding') != '8bit':
        bad('8-bit returned content without 8bit encoding')


def check(raw, original, args):
    """check - all the checks of one DSN"""
    check_octets(raw, args.eightbit)
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    for part in msg.walk():
        for d in part.defects:
            bad('email defect in %s: %s' % (part.get_content_type(),
                                           type(d).__name__))
    head, body = split_head(raw)
    top = field_map(fields(head), 'top-level header')
    check_top(msg, top, args)
    boundary = msg.get_boundary()
    if not boundary or len(boundary) > 70:
        bad('boundary %r' % boundary)
        return
    delim = b'\r\n--' + boundary.encode()
    segs = (b'\r\n' + body).split(delim)
    preamble, segs = segs[0], segs[1:]
    if not segs or not segs[-1].startswith(b'--'):
        bad('no close delimiter')
        return
    if segs[-1] != b'--\r\n':
        bad('text after the close delimiter: %r' % segs[-1][:40])
    parts = []
    for s in segs[:-1]:
        if not s.startswith(b'\r\n'):
            bad('junk after a delimiter: %r' % s[:40])
        parts.append(split_head(s[2:]))
    want_n = 2 if args.ret == 'none' else 3
    if len(parts) != want_n:
        bad('%d parts, want %d' % (len(parts), want_n))
        return
    for h, c in parts:
        if boundary.encode() in c or boundary.encode() in h:
            bad('a part contains the boundary')
    if original is not None and boundary.encode() in original:
        bad('the original contains the boundary')
    if boundary.encode() in preamble:
        bad('the preamble contains the boundary')
    epart = msg.get_payload()
    if not isinstance(epart, list) or len(epart) != want_n:
        bad('email reads %s parts' % (len(epart) if isinstance(epart, list)
                                      else 'no'))
        return
    pfields = [field_map(fields(h), 'part header') for h, _ in parts]
    ptypes = [p.get('content-type', '') for p in pfields]

    # 1: the human-readable part
    t0 = ptypes[0].replace(' ', '').lower()
    if t0 not in ('text/plain;charset=us-ascii', 'text/plain;charset=utf-8'):
        bad('first part is %s' % ptypes[0])
    text = parts[0][1].decode('utf-8', 'replace')
    flat = re.sub(r'\s+', ' ', text)
    for want in args.text:
        if want not in flat:
            bad('human-readable part lacks %r' % want)

    # 2: the report
    want = ('message/global-delivery-status' if args.glob
            else 'message/delivery-status')
    if ptypes[1] != want:
        bad('second part is %s, want %s' % (ptypes[1], want))
    parsed = None
    if not args.glob:
        parsed = epart[1].get_payload()
        if not isinstance(parsed, list):
            bad('email does not read the delivery-status part')
            parsed = None
    check_status(parts[1][1], args, parsed)

    # 3: what is returned
    if want_n == 3:
        check_returned(ptypes[2].split(';')[0].strip(), pfields[2],
                       parts[2][1], args, original, epart[2])


def main():
    """main - parse the arguments, check, report"""
    ap = argparse.ArgumentParser(description='check a DSN')
    ap.add_argument('dsn')
    ap.add_argument('--original')
    ap.add_argument('--kind', default='failure', choices=sorted(SUBJECTS))
    ap.add_argument('--sender')
    ap.add_argument('--rcpts', type=int)
    ap.add_argument('--return', dest='ret', default='full',
                    choices=('full', 'headers', 'none'))
    ap.add_argument('--envid')
    ap.add_argument('--global', dest='glob', action='store_true')
    ap.add_argument('--eightbit', action='store_true')
    ap.add_argument('--repaired', action='store_true')
    ap.add_argument('--field', action='append', default=[])
    ap.add_argument('--no-field', action='append', default=[])
    ap.add_argument('--text', action='append', default=[])
    args = ap.parse_args()
    with open(args.dsn, 'rb') as f:
        raw = f.read()
    original = None
    if args.original:
        with open(args.original, 'rb') as f:
            original = f.read()
    check(raw, original, args)
    if problems:
        for p in problems:
            print('dsn-check: %s' % p)
        return 1
    print('ok: %d octets, %s, return %s' % (len(raw), args.kind, args.ret))
    return 0


if __name__ == '__main__':
    sys.exit(main())
