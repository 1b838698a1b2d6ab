#!/usr/bin/env python3
# NAME
#	smtp-dialogue - play one scripted SMTP client dialogue, print the replies
# SYNOPSIS
#	smtp-dialogue.py [-t SECONDS] HOST PORT FILE.in
# DESCRIPTION
#	Connects to HOST:PORT, reads the greeting, then plays FILE.in and
#	prints one line on stdout for every reply the server sends: the
#	three-digit code, followed by the enhanced status code (RFC 3463)
#	when the last line of the reply starts with one, for example
#	"220", "250 2.1.0" or "554 5.7.1". For a multiline reply only the
#	last line counts. When the server closes the connection the runner
#	prints "[closed]" and stops; when a reply does not come within the
#	read limit (10 s, -t) it prints "[timeout]" and stops; a line that
#	is not a reply prints "[bad-reply]". The whole conversation, reply
#	texts included, goes to stderr for diagnosis: compare stdout with a
#	FILE.ref, whose texts are free to change.
#
#	At the end of the script the runner half-closes the connection
#	(shutdown SHUT_WR) and prints whatever the server still sends until
#	it closes, so every transcript ends in "[closed]", and a reply that
#	nobody asked for shows up as an extra line.
#
#	FILE.in holds one client line per line; the runner sends it with
#	CRLF and then reads exactly one complete reply. An empty line sends
#	an empty command line. Escapes, everywhere (lines and directives):
#	\r \n \t \0 \xHH \\ ; any other backslash is an error. Lines that
#	start with "!" are directives:
#
#	!# TEXT		a comment; nothing is sent
#	!raw TEXT	send TEXT as is: no CRLF added, no reply read
#	!repeat N TEXT	send TEXT N times (one write, no CRLF added, no
#			reply read): long lines and floods
#	!expect [N]	read N replies (default 1) now
#	!noreply	send the next line with CRLF, read no reply
#	!pipeline	send every line up to !end in one write (each with
#			CRLF; "!raw TEXT" inside adds TEXT without CRLF and
#			counts no reply), then read one reply per line
#	!data		send every line up to !enddata (each with CRLF) in
#			one write, then read one reply. The lines are the
#			message text and must include the final "." line;
#			a line that starts with "!" is written \x21.
#	!bdat N [ARGS]	send "BDAT N ARGS" CRLF and N octets of payload
#			in one write, read one reply. The payload is lines
#			of "x" ending in CRLF, cut at N octets.
#	!sleep S	pause S seconds (a float)
#	!close		half-close now and print replies until [closed]
#	!hangup		close the socket at once (with unread input the
#			kernel sends a RST) and stop; nothing more is read
#
# EXIT STATUS
#	0 when the script ran (whatever the replies), 1 when the connection
#	could not be made, 2 for a usage or script error.
import argparse
import re
import socket
import sys
import time

READ_LIMIT = 10.0
ENHANCED = re.compile(rb'^([245])\.([0-9]{1,3})\.([0-9]{1,3})(?=[ \t]|$)')
REPLY = re.compile(rb'^([0-9]{3})([ -]|$)(.*)$', re.S)


class Stop(Exception):
	"""The dialogue is over: closed, timed out or garbage."""


class ScriptError(Exception):
	"""FILE.in is malformed."""


# unescape - turn the escapes of one script line into bytes
def unescape(text, where):
	out = bytearray()
	i = 0
	simple = {ord('r'): b'\r', ord('n'): b'\n', ord('t'): b'\t',
		  ord('0'): b'\0', ord('\\'): b'\\'}
	while i < len(text):
		c = text[i]
		if c != 0x5c:
			out.append(c)
			i += 1
			continue
		if i + 1 >= len(text):
			raise ScriptError(f"{where}: backslash at the end")
		e = text[i + 1]
		if e in simple:
			out += simple[e]
			i += 2
		elif e == ord('x'):
			h = text[i + 2:i + 4]
			if not re.fullmatch(rb'[0-9a-fA-F]{2}', h):
				raise ScriptError(f"{where}: bad \\x escape")
			out.append(int(h, 16))
			i += 4
		else:
			raise ScriptError(f"{where}: unknown escape \\{chr(e)}")
	return bytes(out)


# show - a printable form of octets for the stderr transcript
def show(data, limit=160):
	s = data.decode('latin-1')
	s = s.encode('unicode_escape').decode('ascii')
	if len(s) > limit:
		s = s[:limit] + f'...({len(data)} octets)'
	return s


class Dialogue:
	"""One connection and the replies read on it."""

	def __init__(self, sock, limit):
		self.sock = sock
		self.limit = limit
		self.buf = b''
		self.eof = False

	# readline - one line ending in LF, or None at EOF
	def readline(self, deadline):
		while b'\n' not in self.buf:
			if self.eof:
				return None
			left = deadline - time.monotonic()
			if left <= 0:
				raise TimeoutError()
			self.sock.settimeout(left)
			try:
				chunk = self.sock.recv(65536)
			except socket.timeout:
				raise TimeoutError()
			except (ConnectionResetError, BrokenPipeError) as e:
				print(f"S: [{e.__class__.__name__}]",
				      file=sys.stderr)
				chunk = b''
			if not chunk:
				self.eof = True
				if self.buf:
					line, self.buf = self.buf, b''
					return line
				return None
			self.buf += chunk
		line, self.buf = self.buf.split(b'\n', 1)
		return line + b'\n'

	# reply - read one complete reply and print its summary
	def reply(self):
		deadline = time.monotonic() + self.limit
		while True:
			try:
				line = self.readline(deadline)
			except TimeoutError:
				print("[timeout]")
				print(f"S: [timeout after {self.limit:g} s]",
				      file=sys.stderr)
				raise Stop()
			if line is None:
				print("[closed]")
				print("S: [closed]", file=sys.stderr)
				raise Stop()
			print(f"S: {show(line)}", file=sys.stderr)
			text = line.rstrip(b'\n')
			if text.endswith(b'\r'):
				text = text[:-1]
			m = REPLY.match(text)
			if not m:
				print("[bad-reply]")
				raise Stop()
			if m.group(2) == b'-':
				continue
			code = m.group(1).decode()
			e = ENHANCED.match(m.group(3))
			if e:
				code += ' ' + e.group(0).decode()
			print(code)
			sys.stdout.flush()
			return

	# send - write octets, or stop when the peer is gone
	def send(self, data):
		print(f"C: {show(data)}", file=sys.stderr)
		try:
			self.sock.sendall(data)
		except (ConnectionResetError, BrokenPipeError) as e:
			print(f"C: [{e.__class__.__name__}]", file=sys.stderr)
			# the peer may have said why before it went away
			while True:
				self.reply()

	# drain - half-close and print replies until the server closes
	def drain(self):
		try:
			self.sock.shutdown(socket.SHUT_WR)
		except OSError:
			pass
		while True:
			self.reply()


# payload - N octets of "x" lines ending in CRLF
def payload(n):
	line = b'x' * 76 + b'\r\n'
	return (line * (n // len(line) + 1))[:n]


# block - the lines of FILE.in from index i up to the line END
def block(lines, i, end, name):
	body = []
	while i < len(lines):
		if lines[i] == end:
			return body, i + 1
		body.append((i + 1, lines[i]))
		i += 1
	raise ScriptError(f"{name}: {end.decode()} is missing")


# compile - turn FILE.in into a list of (what, octets, replies) steps;
# what is "send", "sleep", "close" or "hangup". Every script error is
# found here, before the connection is made.
def compile_script(lines, name):
	steps = []
	i = 0
	while i < len(lines):
		where = f"{name}:{i + 1}"
		line = lines[i]
		i += 1
		if not line.startswith(b'!'):
			steps.append(('send', unescape(line, where) + b'\r\n', 1))
			continue
		word, _, rest = line[1:].partition(b' ')
		word = word.decode('ascii', 'replace')
		if word == '#':
			continue
		elif word == 'raw':
			steps.append(('send', unescape(rest, where), 0))
		elif word == 'repeat':
			n, _, text = rest.partition(b' ')
			if not n.isdigit():
				raise ScriptError(f"{where}: !repeat N TEXT")
			steps.append(('send', unescape(text, where) * int(n), 0))
		elif word == 'expect':
			if rest.strip() and not rest.strip().isdigit():
				raise ScriptError(f"{where}: !expect [N]")
			n = int(rest) if rest.strip() else 1
			steps.append(('send', b'', n))
		elif word == 'noreply':
			if i >= len(lines) or lines[i].startswith(b'!'):
				raise ScriptError(f"{where}: !noreply needs a line")
			steps.append(('send', unescape(lines[i],
			    f"{name}:{i + 1}") + b'\r\n', 0))
			i += 1
		elif word == 'pipeline':
			body, i = block(lines, i, b'!end', where)
			out = b''
			n = 0
			for no, l in body:
				if l.startswith(b'!raw '):
					out += unescape(l[5:], f"{name}:{no}")
				elif l.startswith(b'!'):
					raise ScriptError(f"{name}:{no}: only "
							  "!raw inside !pipeline")
				else:
					out += unescape(l, f"{name}:{no}") + b'\r\n'
					n += 1
			steps.append(('send', out, n))
		elif word == 'data':
			body, i = block(lines, i, b'!enddata', where)
			out = b''.join(unescape(l, f"{name}:{no}") + b'\r\n'
				       for no, l in body)
			steps.append(('send', out, 1))
		elif word == 'bdat':
			args = rest.split(None, 1)
			if not args or not args[0].isdigit():
				raise ScriptError(f"{where}: !bdat N [ARGS]")
			cmd = b'BDAT ' + rest.strip() + b'\r\n'
			steps.append(('send', cmd + payload(int(args[0])), 1))
		elif word == 'sleep':
			try:
				steps.append(('sleep', float(rest), 0))
			except ValueError:
				raise ScriptError(f"{where}: !sleep SECONDS")
		elif word == 'close':
			steps.append(('close', b'', 0))
		elif word == 'hangup':
			steps.append(('hangup', b'', 0))
		else:
			raise ScriptError(f"{where}: unknown directive !{word}")
	return steps


# play - run the steps on the connection; Stop ends it early
def play(d, steps):
	d.reply()		# the greeting
	for what, arg, n in steps:
		if what == 'send':
			if arg:
				d.send(arg)
			for _ in range(n):
				d.reply()
		elif what == 'sleep':
			time.sleep(arg)
		elif what == 'close':
			d.drain()
		elif what == 'hangup':
			print("C: [hangup]", file=sys.stderr)
			d.sock.close()
			return
	d.drain()


def main():
	ap = argparse.ArgumentParser(description="play an SMTP dialogue")
	ap.add_argument('-t', type=float, default=READ_LIMIT,
			help="seconds to wait for each reply")
	ap.add_argument('host')
	ap.add_argument('port', type=int)
	ap.add_argument('script')
	a = ap.parse_args()
	try:
		with open(a.script, 'rb') as f:
			lines = f.read().split(b'\n')
	except OSError as e:
		print(f"smtp-dialogue: {e}", file=sys.stderr)
		return 2
	if lines and lines[-1] == b'':
		lines.pop()
	try:
		steps = compile_script(lines, a.script)
	except ScriptError as e:
		print(f"smtp-dialogue: {e}", file=sys.stderr)
		return 2
	try:
		sock = socket.create_connection((a.host, a.port), timeout=a.t)
	except OSError as e:
		print(f"smtp-dialogue: {a.host}:{a.port}: {e}", file=sys.stderr)
		return 1
	d = Dialogue(sock, a.t)
	try:
		play(d, steps)
	except Stop:
		pass
	finally:
		sock.close()
	return 0


if __name__ == '__main__':
	sys.exit(main())
