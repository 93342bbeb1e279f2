#!/usr/bin/env python3
"""A Python multiprocessing.connection.Listener that the C client of
examples/listener_test connects to: the echoes come back, the connection
stays on the socket (Python never sees the shared-memory offer), and a C
client with the wrong key is refused on both sides.
Usage: listener_server.py PROGRAM"""
import os
import subprocess
import sys
import tempfile
import threading
from multiprocessing import AuthenticationError
from multiprocessing.connection import Listener

prog = sys.argv[1]
key = b"example-key"
with tempfile.TemporaryDirectory() as tmp:
    address = os.path.join(tmp, "py.sock")
    listener = Listener(address, authkey=key)
    results = []

    def serve():
        for _ in range(2):
            try:
                c = listener.accept()
            except AuthenticationError:
                results.append("refused")
                continue
            while True:
                try:
                    m = c.recv_bytes()
                except EOFError:
                    break
                c.send_bytes(m)
            results.append("served")

    t = threading.Thread(target=serve)
    t.start()
    good = subprocess.run([prog, "connect", address, key.decode()],
                          capture_output=True, text=True, timeout=60)
    print(good.stdout, end="")
    bad = subprocess.run([prog, "connect", address, "wrong"],
                         capture_output=True, text=True, timeout=60)
    print(bad.stdout, end="")
    t.join(60)
    listener.close()
    print("python listener:", results)
    if good.returncode != 0 or "echo: 'multiprocessing.connection'" not in good.stdout:
        sys.exit("FAIL: the C client did not get its echoes")
    if "connected, shared memory: no" not in good.stdout:
        sys.exit("FAIL: a Python peer must stay on the socket")
    if bad.returncode == 0 or "authentication failed" not in bad.stdout:
        sys.exit("FAIL: a wrong key was not refused by the C client")
    if results != ["served", "refused"]:
        sys.exit(f"FAIL: the Python listener saw {results}")
print("ok")
