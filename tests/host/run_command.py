#!/usr/bin/env python3
"""`fstrail run` against the real kernel (host tier, started as root).

Usage: run_command.py FSTRAIL [--user]. With --user, fstrail (and COMMAND) run as uid 65534
(inotify, the backend an ordinary user gets); without, as root (auto: an attributing backend).
Every case starts the real binary with a COMMAND that appends one JSON line per run (its start
time, FSTRAIL_RESCAN, the events file, stdin) to a log outside the watched tree.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

NOBODY = 65534
FSTRAIL = sys.argv[1]
AS_USER = "--user" in sys.argv[2:]
RECORD = r"""
import json, os, sys, time
log, args = sys.argv[1], sys.argv[2:]
rec = {"start": time.time(), "pid": os.getpid(), "rescan": os.environ.get("FSTRAIL_RESCAN")}
with open(os.environ["FSTRAIL_EVENTS_FILE"]) as f:
    rec["events"] = json.load(f)
if "--stdin" in args:
    rec["stdin"] = [p.decode() for p in sys.stdin.buffer.read().split(b"\0")[:-1]]
with open(log, "a") as f:
    f.write(json.dumps(rec) + "\n")
for a in args:
    if a.startswith("--sleep="):
        time.sleep(float(a[8:]))
        with open(log, "a") as f:
            f.write(json.dumps({"end": time.time(), "pid": os.getpid()}) + "\n")
"""
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def prefix():
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if AS_USER else []


def sh(script, cwd=None):
    env = dict(os.environ, HOME="/tmp") if AS_USER else None
    subprocess.run(prefix() + ["sh", "-ec", script], cwd=cwd, check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_until(cond, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


class Run:
    """One `fstrail run` process with its own tree, log and stderr."""

    def __init__(self, base, name, options=None, command_args=(), command=None, tree_setup=None):
        self.dir = os.path.join(base, name)
        self.tree = os.path.join(self.dir, "tree")
        os.makedirs(self.tree)
        self.log = os.path.join(self.dir, "runs.log")
        self.script = os.path.join(self.dir, "record.py")
        with open(self.script, "w") as f:
            f.write(RECORD)
        if tree_setup:
            tree_setup(self.tree)
        if AS_USER:
            subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", self.dir], check=True)
        self.err_path = os.path.join(self.dir, "stderr")
        self.proc = None
        if options is not None:
            self.start(options, command or self.record(*command_args))

    def record(self, *args):
        """The COMMAND that logs each run."""
        return ["python3", self.script, self.log, *args]

    def start(self, options, cmd):
        if os.path.exists(self.log):
            os.remove(self.log)
        self.err = open(self.err_path, "w")
        env = dict(os.environ, TMPDIR=self.dir)
        if AS_USER:
            env["HOME"] = self.dir  # root's is not the user's to read
        env.pop("XDG_RUNTIME_DIR", None)
        self.proc = subprocess.Popen(prefix() + [FSTRAIL, "run", *options, self.tree, "--", *cmd],
                                     stdout=subprocess.DEVNULL, stderr=self.err, stdin=subprocess.DEVNULL, env=env)
        wait_until(lambda: "watching" in self.stderr() or self.proc.poll() is not None, 30)
        self.ready = "watching" in self.stderr() and self.proc.poll() is None
        return self.ready

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def records(self):
        try:
            with open(self.log) as f:
                complete = f.read().split("\n")[:-1]  # a line still being written is not one yet
            return [json.loads(line) for line in complete if line.strip()]
        except FileNotFoundError:
            return []

    def starts(self):
        return [r for r in self.records() if "start" in r]

    def path(self, rel):
        return os.path.join(self.tree, rel)

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return self.proc.returncode


def dead(pid):
    """Gone, or a zombie its new parent has not reaped yet."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def write(path, text="x"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def changes(record):
    return {(c["path"], c["kind"]) for c in record["events"]["changes"]}


def quiet_for(run, count, seconds=0.6):
    """No run beyond `count` for `seconds`."""
    time.sleep(seconds)
    return len(run.starts()) == count


def test_debounce_and_checkout(base):
    def setup(tree):
        subprocess.run(["git", "init", "-q", "-b", "empty", tree], check=True)
        subprocess.run(["git", "-C", tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                        "--allow-empty", "-m", "empty"], check=True)
        subprocess.run(["git", "-C", tree, "checkout", "-q", "-b", "full"], check=True)
        for d in range(100):
            os.makedirs(os.path.join(tree, f"d{d}"))
            for i in range(100):
                write(os.path.join(tree, f"d{d}", f"f{i}.c"), f"{d} {i}\n")
        subprocess.run(["git", "-C", tree, "add", "-A"], check=True)
        subprocess.run(["git", "-C", tree, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                        "-m", "10000 files"], check=True)
        subprocess.run(["git", "-C", tree, "checkout", "-q", "empty"], check=True)
    r = Run(base, "debounce", ["--postpone"], tree_setup=setup)
    check(r.ready, "debounce: fstrail run started")
    check(quiet_for(r, 0, 0.3), "debounce: --postpone: no run at start")
    t0 = time.time()
    sh(f"git -C {r.tree} checkout -q full")
    took = time.time() - t0
    check(wait_until(lambda: len(r.starts()) >= 1, 20), "debounce: the checkout made a run")
    check(quiet_for(r, 1, 1.0), f"debounce: a 10 000-file git checkout ({took:.2f}s) is exactly 1 run "
          f"(runs: {len(r.starts())})")
    first = r.starts()[0]
    n = len(first["events"]["changes"])
    check(first["rescan"] == "1" or n >= 10000, f"debounce: the run lists the 10 000 new files or is a rescan ({n})")
    check(not any("/.git/" in c["path"] for c in first["events"]["changes"]), "debounce: nothing of .git/ listed")
    write(r.path("d0/f0.c"), "a")
    time.sleep(0.005)
    write(r.path("d0/f1.c"), "b")
    check(wait_until(lambda: len(r.starts()) >= 2), "debounce: a later edit makes a second run")
    check(quiet_for(r, 2), "debounce: two edits 5 ms apart are one run")
    sh(f"git -C {r.tree} gc -q 2>/dev/null || true; touch {r.tree}/.git/index")
    check(quiet_for(r, 2, 0.8), "debounce: git's own writes in .git/ never trigger")
    r.stop()


def test_queue(base):
    r = Run(base, "queue", ["--debounce", "30ms"], ["--sleep=1.0"])
    check(r.ready and wait_until(lambda: len(r.starts()) == 1), "queue: runs at start")
    for i in range(5):
        write(r.path(f"q{i}"))
        time.sleep(0.1)
    check(wait_until(lambda: len(r.starts()) >= 2, 5), "queue: changes during a run make one more run")
    recs = r.records()
    first_end = next(x["end"] for x in recs if "end" in x)
    second = r.starts()[1]
    check(second["start"] >= first_end, "queue: the queued run starts after the first ended")
    check(len(changes(second)) == 5, f"queue: the queued run has all 5 changes ({len(changes(second))})")
    check(quiet_for(r, 2, 1.5), "queue: and only one")
    r.stop()


def test_restart_kills_group(base):
    r = Run(base, "restart")
    pidfile = os.path.join(r.dir, "grandchild.pid")
    cmd = ["sh", "-c", f"(trap '' TERM; exec sleep 300) & echo $! > {pidfile}; exec \"$@\"", "sh",
           *r.record("--sleep=30")]
    r.start(["--on-busy", "restart", "--stop-timeout", "300ms"], cmd)
    check(wait_until(lambda: len(r.starts()) == 1 and os.path.exists(pidfile), 30), "restart: runs at start")
    grandchild = int(open(pidfile).read())
    first = r.starts()[0]["pid"]
    t0 = time.time()
    write(r.path("edit"))
    check(wait_until(lambda: len(r.starts()) >= 2, 5), "restart: a change restarts the command")
    took = r.starts()[1]["start"] - t0
    check(took < 2.0, f"restart: new run {took:.2f}s after the change (a grandchild ignores SIGTERM: "
          "SIGKILL after 300ms)")
    check(not os.path.exists(f"/proc/{first}"), "restart: the first command is gone")
    check(wait_until(lambda: dead(grandchild), 3), "restart: its grandchild (ignoring SIGTERM) was killed with the group")
    check(not any("end" in x for x in r.records()), "restart: the first run never finished")
    r.stop()


def test_ignore_files(base):
    def setup(tree):
        if not AS_USER:
            subprocess.run(["git", "init", "-q", tree], check=True)
        write(os.path.join(tree, ".gitignore"), "*.log\nbuild/\n*~\n")
        write(os.path.join(tree, "sub/.gitignore"), "!keep.log\n")
        write(os.path.join(tree, ".ignore"), "*.gen\n")
        write(os.path.join(tree, "sub/deep/.ignore"), "!wanted.gen\n")
        os.makedirs(os.path.join(tree, "build"))
    r = Run(base, "ignore", ["--postpone", "--exclude", "*.tmp"], tree_setup=setup)
    check(r.ready, "ignore: started")
    for rel in ["a.log", "sub/b.log", "build/x.o", "build/new/y.o", "x.gen", "sub/deep/other.gen", "c.tmp",
                "sub/e.tmp", "backup~"]:
        write(r.path(rel))
    check(quiet_for(r, 0, 0.8), "ignore: .gitignore (nested), .ignore (nested), --exclude: no run")
    write(r.path("sub/keep.log"))
    write(r.path("sub/deep/wanted.gen"))
    check(wait_until(lambda: len(r.starts()) == 1), "ignore: negations in nested files re-include")
    got = {p for p, _ in changes(r.starts()[0])}
    check(got == {r.path("sub/keep.log"), r.path("sub/deep/wanted.gen")}, f"ignore: exactly those two ({got})")
    write(r.path("sub/deep/.ignore"), "# none\n")  # wanted.gen is ignored again from now on
    check(wait_until(lambda: len(r.starts()) == 2), "ignore: a changed .ignore is a change")
    time.sleep(0.2)
    write(r.path("sub/deep/wanted.gen"), "2")
    check(quiet_for(r, 2, 0.8), "ignore: ... and its new rules apply at once")
    r.stop()


def test_atomic_save_and_events_file(base):
    r = Run(base, "atomic", ["--postpone", "--paths-to-stdin"], ["--stdin"],
            tree_setup=lambda t: write(os.path.join(t, "main.c"), "old\n"))
    check(r.ready, "atomic: started")
    tmp = r.path(".main.c.swp123")
    write(tmp, "new contents\n")
    os.rename(tmp, r.path("main.c"))
    check(wait_until(lambda: len(r.starts()) == 1), "atomic: the save made a run")
    rec = r.starts()[0]
    check(changes(rec) == {(r.path("main.c"), "modify")}, f"atomic: one modify of the target ({changes(rec)})")
    check(quiet_for(r, 1), "atomic: and only one run")
    # Every kind, with its actor where the backend knows it.
    write(r.path("gone"))
    check(wait_until(lambda: len(r.starts()) == 2), "events: a run for the first file")
    n = len(r.starts())
    write(r.path("new.txt"), "n")
    os.mkdir(r.path("newdir"))
    os.remove(r.path("gone"))
    os.rename(r.path("main.c"), r.path("moved.c"))
    check(wait_until(lambda: len(r.starts()) == n + 1), "events: a run for the burst")
    rec = r.starts()[-1]
    got = changes(rec)
    want = {(r.path("new.txt"), "create"), (r.path("newdir"), "mkdir"), (r.path("gone"), "delete"),
            (r.path("moved.c"), "rename")}
    check(got == want, f"events: kinds and paths ({sorted(got)})")
    ev = rec["events"]
    check(ev["rescan"] is False and ev["lost"] == 0 and rec["rescan"] == "0", "events: not a rescan")
    moved = next(c for c in ev["changes"] if c["kind"] == "rename")
    check(moved.get("old_path") == r.path("main.c"), "events: the rename's old_path")
    created = next(c for c in ev["changes"] if c["kind"] == "create")
    if AS_USER:
        check(created["pid"] is None and created["uid"] is None, "events: inotify: actor null, not guessed")
    else:
        check(created["pid"] == os.getpid() and created["uid"] == 0 and created["comm"] == "python3",
              f"events: the actor ({created.get('pid')}, {created.get('comm')})")
    check(sorted(rec["stdin"]) == sorted([p for p, _ in want] + [r.path("main.c")]),
          f"events: NUL-separated paths on stdin ({rec['stdin']})")
    r.stop()


def test_overflow_rescan(base):
    knob = "/proc/sys/fs/inotify/max_queued_events"
    saved = open(knob).read().strip()
    try:
        with open(knob, "w") as f:
            f.write("16")
        r = Run(base, "overflow", ["--postpone", "--backend", "inotify"])
    finally:
        with open(knob, "w") as f:  # read at inotify_init: the small queue is fstrail's alone
            f.write(saved)
    check(r.ready, "overflow: started with a 16-event queue")
    for i in range(3000):
        write(r.path(f"burst/f{i}"))
    # A run may come in a pause of the burst before the overflow; the one after it is a rescan.
    rescans = lambda: [x for x in r.starts() if x["rescan"] == "1"]
    check(wait_until(lambda: rescans(), 15), "overflow: a run with FSTRAIL_RESCAN=1")
    check(rescans() and rescans()[0]["events"]["rescan"] is True and rescans()[0]["events"]["lost"] >= 1,
          "overflow: its events file says rescan, lost >= 1")
    check("this run is a full one (FSTRAIL_RESCAN=1)" in r.stderr() and "kernel-queue-overflow" in r.stderr(),
          "overflow: and says so on stderr")
    time.sleep(2.5)  # the burst's last runs (a write whose close the overflow lost settles for --settle-max)
    n = len(r.starts())
    write(r.path("after"))
    check(wait_until(lambda: len(r.starts()) == n + 1) and r.starts()[-1]["rescan"] == "0",
          "overflow: the next run is an ordinary one again")
    r.stop()


def test_ignore_self(base):
    out = "echo $$ > out.txt; mkdir -p gen; echo y > gen/y; sh -c 'echo z > gen/z'"
    if AS_USER:
        r = Run(base, "self", ["--ignore-self"], command=["true"])
        code = r.proc.wait(30)
        check(not r.ready, "ignore-self: as a user, refused before watching")
        err = r.stderr()
        check(code == 2 and "--ignore-self" in err and "inotify" in err and "bpf-tracepoint" in err and
              "fanotify" in err, f"ignore-self: as a user, a clear error naming the backends that can ({code})")
        print(err.strip())
        return
    for backend in ["auto", "fanotify"]:
        r = Run(base, f"self-{backend}")
        cmd = ["sh", "-c", f"cd {r.tree} && {out}; exec \"$@\"", "sh", *r.record()]
        r.start(["--backend", backend], cmd)
        time.sleep(3.0)
        runs = len(r.starts())
        r.stop()
        check(runs >= 2, f"ignore-self ({backend}): without it, the command's writes re-trigger ({runs} runs)")
        r.start(["--backend", backend, "--ignore-self"], cmd)
        time.sleep(3.0)
        runs = len(r.starts())
        check(runs == 1, f"ignore-self ({backend}): with it, only the first run ({runs} runs)")
        write(r.path("someone-else"))
        check(wait_until(lambda: len(r.starts()) == 2), f"ignore-self ({backend}): another process's change runs it")
        check(quiet_for(r, 2, 1.0), f"ignore-self ({backend}): once")
        r.stop()


def test_settle(base):
    # inotify (the user's) and fanotify can tell a file is still being written; eBPF cannot.
    options = ["--postpone"] + ([] if AS_USER else ["--backend", "fanotify"])
    r = Run(base, "settle", options, tree_setup=lambda t: write(os.path.join(t, "big"), "start\n"))
    check(r.ready, "settle: started")
    with open(r.path("big"), "a") as big:
        big.write("part 1\n")
        big.flush()
        time.sleep(0.2)
        write(r.path("trigger"))  # a change while big is open for writing
        time.sleep(0.8)
        check(len(r.starts()) == 0, "settle: no run while a file is still being written")
        big.write("part 2\n")
        closed = time.time()
    check(wait_until(lambda: len(r.starts()) == 1), "settle: a run once it is closed")
    rec = r.starts()[0]
    check(rec["start"] >= closed and changes(rec) == {(r.path("trigger"), "create"), (r.path("big"), "modify")},
          f"settle: after the close, with both changes ({changes(rec)})")
    r.stop()
    # At most --settle-max.
    r = Run(base, "settle-max", options + ["--settle-max", "500ms"],
            tree_setup=lambda t: write(os.path.join(t, "big"), "start\n"))
    with open(r.path("big"), "a") as big:
        big.write("part 1\n")
        big.flush()
        time.sleep(0.2)
        t0 = time.time()
        write(r.path("trigger"))
        ran = wait_until(lambda: len(r.starts()) == 1, 3)
        check(ran and 0.4 <= r.starts()[0]["start"] - t0 < 2.0,
              f"settle: a file written for longer waits --settle-max (500ms), no more "
              f"({r.starts()[0]['start'] - t0 if ran else None})")
    r.stop()


def test_once(base):
    r = Run(base, "once", ["--postpone", "--once"], command=["sh", "-c", "exit 3"])
    check(r.ready, "once: started")
    write(r.path("trigger"))
    try:
        code = r.proc.wait(10)
    except subprocess.TimeoutExpired:
        code = None
    check(code == 3, f"once: exits with COMMAND's status ({code})")
    r.stop()


def main():
    base = tempfile.mkdtemp(prefix="fstrail-run-")
    os.chmod(base, 0o755)
    try:
        for test in [test_debounce_and_checkout, test_queue, test_restart_kills_group, test_ignore_files,
                     test_atomic_save_and_events_file, test_overflow_rescan, test_ignore_self, test_settle, test_once]:
            if os.environ.get("RUN_ONLY") and os.environ["RUN_ONLY"] not in test.__name__:
                continue
            print(f"--- {test.__name__} ({'user' if AS_USER else 'root'})", flush=True)
            test(base)
    finally:
        subprocess.run(["rm", "-rf", base])
    if failures:
        print(f"{len(failures)} FAILED: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
