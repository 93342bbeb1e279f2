#!/usr/bin/env python3
"""Drive examples/listener_test (a C echo server) with Python's own
multiprocessing.connection.Client: right key (messages of 0 bytes, 64 KiB
and 4 MiB come back intact; tests/listener/listener_python.c moves 100 MiB
each way), wrong key (AuthenticationError here, the
server refuses and goes on), and a C client of the same program, which
moves to shared memory.  Usage: listener_client.py PROGRAM"""
import os
import subprocess
import sys
import tempfile
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client

prog = sys.argv[1]
key = "example-key"
with tempfile.TemporaryDirectory() as tmp:
    address = os.path.join(tmp, "echo.sock")
    server = subprocess.Popen([prog, "serve", address, key, "3"],
                              stdout=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    print(line, end="")
    assert line.startswith("listening on "), line

    c = Client(address, authkey=key.encode())
    for size in (0, 64 << 10, 4 << 20):
        msg = os.urandom(size)
        c.send_bytes(msg)
        assert c.recv_bytes() == msg, size
        print(f"python: {size} bytes echoed intact")
    c.close()

    try:
        Client(address, authkey=b"wrong")
        sys.exit("FAIL: a wrong key was accepted")
    except AuthenticationError:
        print("python: wrong key refused")

    out = subprocess.run([prog, "connect", address, key], capture_output=True,
                         text=True, timeout=60).stdout
    print(out, end="")
    rest, _ = server.communicate(timeout=60)
    print(rest, end="")
    expect = ["client done: 3 messages, 4259840 bytes echoed",
              "refused a client: authentication failed",
              "connected, shared memory: yes", "echo: 'Python'",
              "echo: 'multiprocessing.connection'",
              "accepted, shared memory: yes"]
    for e in expect:
        if e not in rest + out:
            sys.exit(f"FAIL: expected {e!r}")
    if server.returncode != 0:
        sys.exit(f"FAIL: server exited with {server.returncode}")
print("ok")
