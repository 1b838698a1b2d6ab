#!/usr/bin/env python3
# NAME
#	make-session-seeds - write the fuzz-smtp-session corpus
# SYNOPSIS
#	tests/fuzz/make-session-seeds.py
# DESCRIPTION
#	Rewrites tests/fuzz/corpus/fuzz-smtp-session/ from the dialogues
#	of tests/integration/dialogues (and dialogues/limits), compiled
#	by tests/tools/smtp-dialogue.py's own compile_script(), plus
#	hand-written ODMR, ETRN, TLS and teardown seeds. A seed is the two
#	control octets of tests/fuzz/fuzz-smtp-session.c, then the octets
#	the client sends, with CRLF line ends. Every dialogue gives three
#	seeds:
#	NAME		a client that sends one line and waits for the
#			reply, ended as the dialogue ends (half-close,
#			or SO_LINGER 0 for !hangup);
#	NAME.pipelined	all at once, ended in one of the rude ways;
#	NAME.tls	EHLO and STARTTLS first, a TLS handshake, then the
#			dialogue inside TLS, ended with close_notify and
#			the other ways in turn.
#	Dialogues whose stream is longer than SEED_MAX are left out (the
#	longest lines are the parser fuzzers' business), so that libFuzzer's
#	-max_len stays small.
# EXIT STATUS
#	0 on success, 1 when a dialogue does not compile.
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
DIALOGUES = os.path.join(TOP, 'tests', 'integration', 'dialogues')
RUNNER = os.path.join(TOP, 'tests', 'tools', 'smtp-dialogue.py')
OUT = os.path.join(HERE, 'corpus', 'fuzz-smtp-session')
SEED_MAX = 16384

# octet 0
SMTP, ODMR, ODMRS = 0, 1, 2
TLS = 1 << 2
END_HALFCLOSE, END_CLOSE, END_RST, END_NOTIFY_READ, END_NOTIFY_CLOSE, \
    END_ABORT, END_SHUTDOWN, END_CUT = range(8)
LAX = 1 << 6
NOREAD = 1 << 7
# octet 1
CHUNK_ALL, CHUNK_LINE, CHUNK_RANDOM = 0, 14, 15
LOCKSTEP = 1 << 4

PLAIN_DEMO = b'AGRlbW8AZGVtbw=='	# "\0demo\0demo"
PLAIN_WRONG = b'AGRlbW8Ad3Jvbmc='	# "\0demo\0wrong"
# the customer's side of a reversed session (RFC 2645): greeting,
# EHLO, MAIL, RCPT, DATA, the end of the text, QUIT
CUSTOMER = (b'220 customer.test ESMTP\r\n'
	    b'250-customer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n'
	    b'250 SIZE\r\n'
	    b'250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go ahead\r\n'
	    b'250 2.0.0 queued\r\n221 2.0.0 bye\r\n')
CUSTOMER_REFUSES = CUSTOMER.replace(b'250 2.1.5 ok',
				    b'550 5.1.1 no such user')
STARTTLS = b'EHLO fuzz.client.test\r\nSTARTTLS\r\n'


# ctrl - the two control octets
def ctrl(listener=SMTP, flags=0, end=END_HALFCLOSE, chunk=CHUNK_LINE,
	 lockstep=True, seed=0):
	return bytes([listener | flags | (end << 3),
		      chunk | (LOCKSTEP if lockstep else 0) | (seed << 5)])


# load_runner - smtp-dialogue.py as a module (its name has a dash)
def load_runner():
	spec = importlib.util.spec_from_file_location('smtp_dialogue', RUNNER)
	mod = importlib.util.module_from_spec(spec)
	spec.loader.exec_module(mod)
	return mod


# dialogue - the client's octets of one .in file and how it ends
def dialogue(runner, path):
	with open(path, 'rb') as f:
		lines = f.read().split(b'\n')
	if lines and lines[-1] == b'':
		lines.pop()
	stream, end = b'', END_HALFCLOSE
	for what, arg, _ in runner.compile_script(lines, path):
		if what == 'send':
			stream += arg
		elif what == 'close':
			break
		elif what == 'hangup':
			end = END_RST
			break
	return stream, end


# special - the hand-written seeds: ODMR, ETRN, issue 14's teardowns
def special():
	auth = b'AUTH PLAIN ' + PLAIN_DEMO + b'\r\n'
	ehlo = b'EHLO customer.test\r\n'
	msg = (b'MAIL FROM:<s@sender.test>\r\nRCPT TO:<u@example.org>\r\n'
	       b'DATA\r\nSubject: fuzz\r\n\r\nbody\r\n.\r\n')
	s = {}
	s['odmr-atrn-lax'] = ctrl(ODMR, LAX) + ehlo + auth + \
	    b'ATRN example.org\r\n' + CUSTOMER
	s['odmr-atrn-starttls'] = ctrl(ODMR, TLS, END_NOTIFY_READ) + \
	    STARTTLS + ehlo + auth + b'ATRN\r\n' + CUSTOMER
	s['odmr-atrn-refused-rcpt'] = ctrl(ODMR, LAX) + ehlo + auth + \
	    b'ATRN example.org\r\n' + CUSTOMER_REFUSES
	s['odmr-atrn-hangup-in-turn'] = ctrl(ODMR, LAX, END_CUT) + ehlo + \
	    auth + b'ATRN example.org\r\n220 customer.test ESMTP\r\n' \
	    b'250 customer.test\r\n'
	s['odmr-atrn-abort-in-turn'] = ctrl(ODMR, LAX, END_ABORT) + ehlo + \
	    auth + b'ATRN example.org\r\n220 customer.test ESMTP\r\n'
	s['odmr-atrn-shutdown-in-turn'] = ctrl(ODMR, LAX, END_SHUTDOWN) + \
	    ehlo + auth + b'ATRN example.org\r\n220 customer.test ESMTP\r\n' \
	    b'250 customer.test\r\n'
	s['odmr-atrn-pipelined'] = ctrl(ODMR, LAX, END_CLOSE, CHUNK_ALL,
	    False) + ehlo + auth + b'ATRN example.org, sub.example.net\r\n' + \
	    CUSTOMER
	s['odmr-atrn-not-owner'] = ctrl(ODMR, LAX) + ehlo + auth + \
	    b'ATRN example.org,nosuch.example\r\nATRN \r\nATRN a,,b\r\n' \
	    b'QUIT\r\n'
	s['odmr-atrn-no-auth'] = ctrl(ODMR) + ehlo + \
	    b'ATRN example.org\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n'
	s['odmr-auth-wrong'] = ctrl(ODMR, LAX) + ehlo + \
	    b'AUTH PLAIN ' + PLAIN_WRONG + b'\r\nQUIT\r\n'
	s['odmr-auth-plain-needs-tls'] = ctrl(ODMR) + ehlo + auth + \
	    b'AUTH PLAIN\r\n' + PLAIN_DEMO + b'\r\nAUTH LOGIN\r\n*\r\n' \
	    b'QUIT\r\n'
	s['odmr-auth-login-tls'] = ctrl(ODMR, TLS) + STARTTLS + ehlo + \
	    b'AUTH LOGIN\r\nZGVtbw==\r\nZGVtbw==\r\nATRN example.org\r\n' + \
	    CUSTOMER
	s['odmr-auth-cram'] = ctrl(ODMR) + ehlo + \
	    b'AUTH CRAM-MD5\r\nZGVtbyAwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZg==' \
	    b'\r\nAUTH SCRAM-SHA-256 biwsbj1kZW1vLHI9ZnV6ego=\r\n*\r\nQUIT\r\n'
	s['odmr-etrn'] = ctrl(ODMR, LAX) + ehlo + auth + \
	    b'ETRN example.org\r\nETRN @example.net\r\n' \
	    b'ETRN #plain.example.com\r\nETRN #nosuch\r\nETRN\r\nQUIT\r\n'
	s['odmrs-atrn'] = ctrl(ODMRS, 0, END_NOTIFY_CLOSE) + ehlo + auth + \
	    b'ATRN example.org,sub.example.net\r\n' + CUSTOMER
	s['odmrs-handshake-notify'] = ctrl(ODMRS, 0, END_NOTIFY_CLOSE)
	s['odmrs-handshake-close'] = ctrl(ODMRS, 0, END_CLOSE)
	s['odmrs-handshake-rst'] = ctrl(ODMRS, 0, END_RST)
	s['odmrs-plaintext-client'] = ctrl(ODMRS, TLS, END_HALFCLOSE) + \
	    b'EHLO plain.client.test\r\nQUIT\r\n'
	s['mx-etrn'] = ctrl(SMTP) + b'EHLO c.test\r\n' + msg + \
	    b'ETRN example.org\r\nETRN sub.example.net\r\n' \
	    b'ETRN @example.org\r\nETRN #example.org\r\nQUIT\r\n'
	s['mx-tls-auth-etrn'] = ctrl(SMTP, TLS, END_NOTIFY_READ) + \
	    STARTTLS + b'EHLO c.test\r\n' + auth + \
	    b'ETRN sub.example.net\r\nETRN @example.net\r\nQUIT\r\n'
	# issue 14: QUIT, close_notify and close without reading the 221
	s['issue14-quit-notify-close'] = ctrl(SMTP, TLS | NOREAD,
	    END_NOTIFY_CLOSE) + b'EHLO x\r\nSTARTTLS\r\nEHLO x\r\nQUIT\r\n'
	s['issue14-noops-notify-close'] = ctrl(SMTP, TLS, END_NOTIFY_CLOSE,
	    CHUNK_ALL, False) + b'EHLO x\r\nSTARTTLS\r\n' + \
	    b'NOOP\r\n' * 200
	s['issue14-bdat-notify-close'] = ctrl(SMTP, TLS, END_NOTIFY_CLOSE,
	    CHUNK_ALL, False) + b'EHLO x\r\nSTARTTLS\r\nEHLO x\r\n' \
	    b'MAIL FROM:<s@sender.test>\r\nRCPT TO:<u@example.org>\r\n' \
	    b'BDAT 100000\r\n' + b'x' * 3000
	s['issue14-odmr-quit-notify-close'] = ctrl(ODMR, TLS,
	    END_NOTIFY_CLOSE) + b'EHLO x\r\nSTARTTLS\r\nEHLO x\r\nQUIT\r\n'
	s['issue14-odmrs-quit-notify-close'] = ctrl(ODMRS, 0,
	    END_NOTIFY_CLOSE, CHUNK_ALL, False) + b'EHLO x\r\nQUIT\r\n'
	s['issue14-data-end-rst'] = ctrl(SMTP, 0, END_RST, CHUNK_ALL,
	    False) + b'EHLO x\r\n' + msg
	s['issue14-data-end-cut'] = ctrl(SMTP, 0, END_CUT, CHUNK_ALL,
	    False) + b'EHLO x\r\n' + msg
	s['issue14-tls-data-end-cut'] = ctrl(SMTP, TLS, END_CUT, CHUNK_ALL,
	    False) + STARTTLS + b'EHLO x\r\n' + msg + msg
	# a client that never reads: output backpressure
	s['noread-ehlo-flood'] = ctrl(SMTP, NOREAD, END_RST, CHUNK_ALL,
	    False) + b'EHLO a.example\r\n' * 1000
	s['noread-ehlo-flood-odmr'] = ctrl(ODMR, NOREAD | LAX, END_CLOSE,
	    CHUNK_RANDOM, False, 3) + b'EHLO a.example\r\n' * 800
	s['noread-tls-help-flood'] = ctrl(SMTP, NOREAD | TLS | LAX,
	    END_NOTIFY_CLOSE, CHUNK_ALL, False) + STARTTLS + \
	    b'HELP\r\n' * 1500
	# the server ends it: SIGTERM's drain and shutdown_timeout's abort
	s['mx-shutdown-idle'] = ctrl(SMTP, 0, END_SHUTDOWN) + b'EHLO c.test\r\n'
	s['mx-shutdown-in-data'] = ctrl(SMTP, 0, END_SHUTDOWN) + \
	    b'EHLO c.test\r\nMAIL FROM:<s@sender.test>\r\n' \
	    b'RCPT TO:<u@example.org>\r\nDATA\r\nSubject: x\r\n\r\npart\r\n'
	s['mx-abort-in-bdat'] = ctrl(SMTP, TLS, END_ABORT) + STARTTLS + \
	    b'EHLO c.test\r\nMAIL FROM:<s@sender.test>\r\n' \
	    b'RCPT TO:<u@example.org>\r\nBDAT 500 LAST\r\n' + b'y' * 100
	s['mx-starttls-into-plaintext'] = ctrl(SMTP) + \
	    b'EHLO x\r\nSTARTTLS\r\nEHLO x\r\nQUIT\r\n'
	s['mx-starttls-injection'] = ctrl(SMTP, 0, END_HALFCLOSE, CHUNK_ALL,
	    False) + b'EHLO x\r\nSTARTTLS\r\nRSET\r\nMAIL FROM:<a@b.test>\r\n'
	s['mx-random-chunks'] = ctrl(SMTP, TLS, END_NOTIFY_READ,
	    CHUNK_RANDOM, False, 5) + STARTTLS + b'EHLO c.test\r\n' + \
	    msg * 3 + b'QUIT\r\n'
	s['mx-bytewise'] = ctrl(SMTP, 0, END_HALFCLOSE, 1, False) + \
	    b'EHLO c.test\r\n' + msg + b'QUIT\r\n'
	return s


# main - regenerate the corpus directory
def main():
	runner = load_runner()
	seeds = {}
	ends_rude = [END_CLOSE, END_RST, END_ABORT, END_SHUTDOWN, END_CUT,
		     END_HALFCLOSE]
	ends_tls = [END_NOTIFY_CLOSE, END_NOTIFY_READ, END_HALFCLOSE,
		    END_CLOSE, END_RST, END_CUT, END_ABORT, END_SHUTDOWN]
	skipped = []
	names = []
	for sub in ('', 'limits'):
		d = os.path.join(DIALOGUES, sub)
		names += [os.path.join(d, f) for f in sorted(os.listdir(d))
			  if f.endswith('.in')]
	for i, path in enumerate(names):
		name = os.path.basename(path)[:-3]
		try:
			stream, end = dialogue(runner, path)
		except runner.ScriptError as e:
			print(f"make-session-seeds: {e}", file=sys.stderr)
			return 1
		if len(stream) + len(STARTTLS) > SEED_MAX:
			skipped.append(name)
			continue
		lax = LAX if os.path.basename(os.path.dirname(path)) == \
		    'limits' else 0
		seeds[name] = ctrl(SMTP, lax, end) + stream
		seeds[name + '.pipelined'] = ctrl(SMTP, lax,
		    ends_rude[i % len(ends_rude)], CHUNK_ALL, False) + stream
		seeds[name + '.tls'] = ctrl(SMTP, lax | TLS,
		    ends_tls[i % len(ends_tls)]) + STARTTLS + stream
	seeds.update(special())
	os.makedirs(OUT, exist_ok=True)
	for f in os.listdir(OUT):
		os.remove(os.path.join(OUT, f))
	for name, data in seeds.items():
		with open(os.path.join(OUT, name), 'wb') as f:
			f.write(data)
	print(f"make-session-seeds: {len(seeds)} seeds in {OUT}; left out"
	      f" (over {SEED_MAX} octets): {' '.join(skipped) or 'none'}")
	return 0


if __name__ == '__main__':
	sys.exit(main())
