#!/usr/bin/env python3
"""tools-stat: mproc-stat against live objects.

Starts tools_stat_helper, which creates an SPSC and an MPMC queue, a closed
queue, a queue with a child asleep in get, a queue whose creator died, a
duplex pipe and a pool, with known contents, and prints what it made.  The
numbers mproc-stat --json reports for them must be exactly those.  Then
the same for two hostile copies of a segment in /dev/shm (geometry damaged,
ring indices damaged), the text output, --watch with rates, and NAME/PID
selection.

usage: check-stat.py MPROC_STAT HELPER
"""
import json
import os
import subprocess
import sys
import time

stat_bin, helper_bin = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def stat(*args):
    p = subprocess.run([stat_bin, *args], capture_output=True, text=True,
                       timeout=30)
    return p.returncode, p.stdout, p.stderr


def stat_json(*args):
    rc, out, err = stat("--json", *args)
    if rc != 0:
        raise SystemExit(f"mproc-stat --json {' '.join(args)}: exit {rc}: {err}")
    return json.loads(out)


def proc(seg, pid):
    for p in seg["processes"]:
        if p["pid"] == pid:
            return p
    return None


def find(segs, **kw):
    out = [s for s in segs if all(s.get(k) == v for k, v in kw.items())]
    check(len(out) == 1, f"exactly one segment with {kw}, found {len(out)}")
    return out[0] if out else None


helper = subprocess.Popen([helper_bin], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
bad_paths = []
try:
    line = helper.stdout.readline()
    if not line:
        raise SystemExit("the helper failed before creating its objects")
    made = json.loads(line)
    pid = made["pid"]

    # The waiter spins before it sleeps: give it a moment to get there.
    deadline = time.time() + 10
    while True:
        segs = stat_json(str(pid))["segments"]
        idle = [s for s in segs if s.get("variant") == "spsc"
                and s["capacity"] == 8192]
        if idle and idle[0]["waiters"]["get"] == 1 or time.time() > deadline:
            break
        time.sleep(0.05)

    for s in segs:
        check(s["error"] is None, f"{s['name']}: error {s['error']}")
        check(s["consistent"], f"{s['name']}: inconsistent: {s['problem']}")
        me = proc(s, pid)
        check(me is not None and me["alive"] and me["attached"],
              f"{s['name']}: the helper is listed, alive and attached")

    # Named SPSC queue: 10 in, 3 out, records of 16 + 112 bytes.
    q = find(segs, name=made["spsc_name"])
    if q:
        check(q["named"] and q["kind"] == "queue" and q["variant"] == "spsc",
              "spsc: kind")
        check(q["capacity"] == 65536, f"spsc: capacity {q['capacity']}")
        check(q["messages"] == 7, f"spsc: messages {q['messages']}")
        check(q["put"] == 10 and q["got"] == 3,
              f"spsc: put {q['put']} got {q['got']}")
        check(q["bytes_used"] == 7 * 128, f"spsc: bytes_used {q['bytes_used']}")
        r = q["rings"][0]
        check(r["bytes_put"] - r["bytes_got"] == 7 * 128, "spsc: byte positions")
        check(not q["closed"] and q["waiters"] == {"get": 0, "put": 0},
              "spsc: open, nobody asleep")
        check("creator" in proc(q, pid)["roles"], "spsc: the helper is its creator")

    # Joinable MPMC queue: 32 slots, 5 messages of 50 bytes.
    q = find(segs, variant="mpmc", capacity=32)
    if q:
        check(q["rings"][0]["max_msg"] == 224, "mpmc: max_msg")
        check(q["messages"] == 5 and q["bytes_used"] == 250,
              f"mpmc: messages {q['messages']} bytes {q['bytes_used']}")
        check(q["put"] == 5 and q["got"] == 0, "mpmc: totals")
        check(q["joinable"] and q["unfinished"] == 5,
              f"mpmc: joinable, unfinished {q.get('unfinished')}")
        check(not q["named"] and q["name"] == f"memfd:{q['inode']}", "mpmc: memfd name")

    # The closed queue keeps its 2 messages.
    q = find(segs, variant="mpmc", closed=True)
    if q:
        check(q["messages"] == 2 and q["bytes_used"] == 16, "closed: contents")

    # The child asleep in get.
    q = find(segs, variant="spsc", capacity=8192)
    if q:
        check(q["waiters"]["get"] == 1, f"idle: waiters {q['waiters']}")
        w = proc(q, made["waiter"])
        check(w is not None and w["alive"] and w["attached"],
              "idle: the waiter is listed as alive and attached")

    # Duplex pipe: a -> b 2 x 40 bytes (ring "b<-a"), b -> a 1 x 10.
    p = find(segs, kind="pipe")
    if p:
        check(p["variant"] == "duplex" and p["ends"] == {"a": "open", "b": "open"},
              "pipe: duplex, both ends open")
        rings = {r["name"]: r for r in p["rings"]}
        check(rings["b<-a"]["messages"] == 2 and rings["b<-a"]["bytes_used"] == 2 * 64,
              f"pipe: b<-a {rings['b<-a']}")
        check(rings["a<-b"]["messages"] == 1 and rings["a<-b"]["bytes_used"] == 32,
              f"pipe: a<-b {rings['a<-b']}")
        check(all(r["capacity"] == 4096 for r in p["rings"]), "pipe: capacity")
        check(p["messages"] == 3, "pipe: messages")

    # Pool: 2 workers, idle after 3 tasks.
    p = find(segs, kind="pool")
    if p:
        check(p["workers"] == 2 and p["parent_pid"] == pid, "pool: workers, parent")
        check(len(p["rings"]) == 4, "pool: a task and a result ring per worker")
        check(p["messages"] == 0, f"pool: idle, messages {p['messages']}")
        tasks = sum(r["got"] for r in p["rings"] if r["name"].startswith("task"))
        check(tasks >= 3, f"pool: at least 3 task messages taken, {tasks}")
        for w in made["workers"]:
            pw = proc(p, w)
            check(pw is not None and pw["alive"] and pw["attached"],
                  f"pool: worker {w} listed, alive and attached")

    # A queue whose creator has exited: found by name, creator dead.
    q = stat_json(made["orphan_name"])["segments"]
    check(len(q) == 1, "orphan: selected by name")
    if q:
        c = proc(q[0], made["orphan_creator"])
        check(c is not None and not c["alive"] and not c["attached"]
              and "creator" in c["roles"], f"orphan: creator dead {c}")
        check(q[0]["messages"] == 1, "orphan: its message")
    rc, out, _ = stat(made["orphan_name"].lstrip("/"))
    check(rc == 0 and made["orphan_name"] in out, "NAME without the slash")

    # Hostile copies of the SPSC queue's file in /dev/shm.
    src = "/dev/shm" + made["spsc_name"]
    data = bytearray(open(src, "rb").read())
    geom = bytearray(data)
    geom[56:64] = (3).to_bytes(8, "little")     # geom[1]: ring size 3
    ring = bytearray(data)
    head_at = 256 + 128                         # data area, queue_ctl
    tail = int.from_bytes(ring[head_at + 64:head_at + 72], "little")
    ring[head_at:head_at + 8] = (tail + (1 << 40)).to_bytes(8, "little")
    for tag, content in (("geom", geom), ("ring", ring)):
        path = f"{src}-bad-{tag}"
        bad_paths.append(path)
        with open(path, "wb") as f:
            f.write(content)
    segs = stat_json()["segments"]
    g = [s for s in segs if s["name"] == made["spsc_name"] + "-bad-geom"]
    check(len(g) == 1 and g[0]["error"] is not None,
          f"bad geometry is reported as an error: {g}")
    r = [s for s in segs if s["name"] == made["spsc_name"] + "-bad-ring"]
    check(len(r) == 1 and r[0]["error"] is None and not r[0]["consistent"]
          and r[0]["messages"] <= 65536 // 16 and r[0]["bytes_used"] <= 65536,
          f"bad ring indices: inconsistent and clamped: {r}")

    # Text output names every segment; --watch reports rates.
    rc, out, _ = stat(str(pid))
    check(rc == 0 and made["spsc_name"] in out and "pool" in out
          and "asleep: 1 in get" in out, "text output")
    rc, out, _ = stat("--json", "--watch", "0.2", "--iterations", "2", str(pid))
    lines = out.splitlines()
    check(rc == 0 and len(lines) == 2, "--watch --json: two snapshots")
    if len(lines) == 2:
        second = json.loads(lines[1])["segments"]
        check(all("rate" in s for s in second if s["error"] is None),
              "--watch: rates in the second snapshot")
    rc, out, _ = stat("--watch", "0.1", "--iterations", "2", str(pid))
    check(rc == 0 and out.count("--- mproc-stat") == 2 and "\033[" not in out,
          "--watch to a pipe: plain reports, no escape sequences")
    rc, _, _ = stat("/mproc-stat-test-no-such-segment")
    check(rc == 1, "unknown NAME: exit 1")
    rc, _, _ = stat("--bogus")
    check(rc == 2, "bad option: exit 2")
finally:
    for path in bad_paths:
        try:
            os.unlink(path)
        except OSError:
            pass
    helper.stdin.close()
    helper.wait(timeout=30)

check(helper.returncode == 0, f"helper exit status {helper.returncode}")
if failures:
    print(f"{len(failures)} checks failed")
    sys.exit(1)
print("mproc-stat reports what the helper made")
