#!/usr/bin/env python3
"""Python 3.12's authkey handshake, written here from its description in
CPython's Lib/multiprocessing/connection.py, installed into the Python 3.11
of this machine, so that mproc's {sha256} path is checked against an
implementation that is not mproc's.  Usage:

  py312_auth.py client ADDRESS KEY   connect, echo one message, exit
  py312_auth.py listen ADDRESS KEY READY   accept one client, echo one message

Exit 3 on an AuthenticationError.  The digest of the challenges can be
changed with MPROC_TEST_DIGEST (sha256 by default; md5, sha384, ...)."""
import hmac
import os
import sys
import multiprocessing.connection as mc
from multiprocessing import AuthenticationError

DIGEST = os.environ.get("MPROC_TEST_DIGEST", "sha256")
ALLOWED = {b"md5", b"sha256", b"sha384", b"sha3_256", b"sha3_384"}


def split(message):
    """(digest name or '' for the legacy untagged form, payload)."""
    if len(message) in (20, 16):
        return "", message
    if message.startswith(b"{"):
        end = message.find(b"}", 1, 10)
        if end > 0 and message[1:end] in ALLOWED:
            return message[1:end].decode(), message[end + 1:]
    raise AuthenticationError("bad message")


def respond(key, challenge):
    name = split(challenge)[0]
    if not name:
        return hmac.new(key, challenge, "md5").digest()
    return b"{%s}" % name.encode() + hmac.new(key, challenge, name).digest()


def deliver(conn, key):
    challenge = b"{%s}" % DIGEST.encode() + os.urandom(40)
    conn.send_bytes(b"#CHALLENGE#" + challenge)
    response = conn.recv_bytes(256)
    name, mac = split(response)
    want = hmac.new(key, challenge, name or "md5").digest()
    if not hmac.compare_digest(want, mac):
        conn.send_bytes(b"#FAILURE#")
        raise AuthenticationError("digest received was wrong")
    conn.send_bytes(b"#WELCOME#")


def answer(conn, key):
    message = conn.recv_bytes(256)
    if not message.startswith(b"#CHALLENGE#"):
        raise AuthenticationError("expected a challenge")
    conn.send_bytes(respond(key, message[len(b"#CHALLENGE#"):]))
    if conn.recv_bytes(256) != b"#WELCOME#":
        raise AuthenticationError("digest sent was rejected")


mc.deliver_challenge = deliver
mc.answer_challenge = answer

role, address, key = sys.argv[1], sys.argv[2], sys.argv[3].encode()
try:
    if role == "client":
        c = mc.Client(address, authkey=key)
    else:
        listener = mc.Listener(address, authkey=key)
        open(sys.argv[4], "w").close()
        c = listener.accept()
except AuthenticationError:
    sys.exit(3)
if role == "client":
    c.send_bytes(b"sha-ping")
    assert c.recv_bytes() == b"sha-ping"
else:
    c.send_bytes(c.recv_bytes())
    try:  # the client hangs up when done
        c.recv_bytes()
    except EOFError:
        pass
    listener.close()
c.close()
