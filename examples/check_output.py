#!/usr/bin/env python3
"""Run an example program and check that its output holds every expected
line fragment, in order.  Usage: check_output.py PROGRAM FRAGMENT..."""
import subprocess
import sys

prog, expected = sys.argv[1], sys.argv[2:]
res = subprocess.run([prog], capture_output=True, text=True, timeout=50)
out = res.stdout
sys.stdout.write(out)
sys.stderr.write(res.stderr)
if res.returncode != 0:
    print(f"FAIL: {prog} exited with {res.returncode}")
    sys.exit(1)
pos = 0
for frag in expected:
    i = out.find(frag, pos)
    if i < 0:
        print(f"FAIL: expected {frag!r} after offset {pos}")
        sys.exit(1)
    pos = i + len(frag)
print(f"ok: {len(expected)} expected fragments found")
