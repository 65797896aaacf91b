#!/usr/bin/env python3
"""Least privilege of the running binary (root, host tier): one command/backend pair.

Starts `fstrail COMMAND --backend BACKEND`, waits until it runs, and checks /proc/PID/status:
CapEff, CapPrm and CapBnd equal the set docs/security.md documents for the pair, NoNewPrivs 1,
Seccomp 2 (filter) on every thread. Then checks the command still works under the filter:
events arrive from a directory another user creates 0700 at run time (a new mark or watch),
`record` stores them (queried back), `guard` chowns a root-made file back. `record` with a
password in --db: absent from /proc/PID/cmdline. Usage: sandbox_test.py FSTRAIL COMMAND BACKEND
"""
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NOBODY = 65534
CAP = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4, "CAP_SYS_PTRACE": 19}
# docs/security.md, "What each command keeps".
BACKEND_CAPS = {"fanotify": {"CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"},
                "inotify": {"CAP_DAC_READ_SEARCH"},
                "bpf-tracepoint": {"CAP_SYS_PTRACE"}}
GUARD_CAPS = {"CAP_CHOWN", "CAP_FOWNER", "CAP_FSETID", "CAP_DAC_READ_SEARCH"}  # remediate = true
MODE_ARGS = (["--tracepoint-mode", os.environ["FSTRAIL_TRACEPOINT_MODE"]]
             if os.environ.get("FSTRAIL_TRACEPOINT_MODE") else [])


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def expected_mask(command, backend):
    caps = set(BACKEND_CAPS[backend]) | (GUARD_CAPS if command == "guard" else set())
    return sum(1 << CAP[c] for c in caps), sorted(caps)


def as_nobody(script):
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "sh", "-ec", script],
                   check=True)


class Running:
    """The binary, started; stderr collected in a file; ready once `banner` is printed."""

    def __init__(self, argv, banner, base):
        self.err_path = os.path.join(base, "stderr")
        self.out_path = os.path.join(base, "stdout")
        self.err = open(self.err_path, "w")
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=self.err)
        deadline = time.time() + 60
        while banner not in self.stderr():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                fail(f"{' '.join(argv)} did not start (status {self.proc.returncode}):\n{self.stderr()}")
            time.sleep(0.1)

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()

    def stdout(self):
        with open(self.out_path) as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def check_status(pid, command, backend):
    want, names = expected_mask(command, backend)
    tids = os.listdir(f"/proc/{pid}/task")
    for tid in tids:
        status = {}
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                status[key] = value.strip()
        for key in ("CapEff", "CapPrm", "CapBnd"):
            if int(status[key], 16) != want:
                fail(f"{command}/{backend} thread {tid}: {key} {status[key]}, documented {want:016x} ({names})")
        for key in ("CapInh", "CapAmb"):
            if int(status[key], 16) != 0:
                fail(f"{command}/{backend} thread {tid}: {key} {status[key]}, want 0")
        if status["NoNewPrivs"] != "1" or status["Seccomp"] != "2":
            fail(f"{command}/{backend} thread {tid}: NoNewPrivs {status['NoNewPrivs']} Seccomp {status['Seccomp']}")
    print(f"{command}/{backend}: CapEff {want:016x} ({', '.join(names)}), NoNewPrivs 1, Seccomp 2 "
          f"on {len(tids)} thread(s)")


def make_tree(base):
    tree = os.path.join(base, "tree")
    os.makedirs(tree)
    os.chmod(base, 0o755)
    os.chown(tree, NOBODY, NOBODY)
    os.chmod(tree, 0o750)
    return tree


def nobody_writes_in_private_dir(tree):
    # A directory root can neither read nor search without CAP_DAC_READ_SEARCH, made after start.
    as_nobody(f"mkdir -m 0700 {tree}/private; sleep 0.5; echo x > {tree}/private/secret; "
              f"sleep 0.2; echo y >> {tree}/private/secret")
    return os.path.join(tree, "private", "secret")


def wait_for(predicate, what, timeout=20):
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_watch(fstrail, backend, base):
    tree = make_tree(base)
    run = Running([fstrail, "watch", "--backend", backend, "--json", *MODE_ARGS, tree], "watching", base)
    check_status(run.proc.pid, "watch", backend)
    secret = nobody_writes_in_private_dir(tree)
    wait_for(lambda: secret in run.stdout(), f"an event on {secret}")
    if run.stop() != 0:
        fail(f"watch exited {run.proc.returncode}:\n{run.stderr()}")
    if backend != "inotify":  # attribution of another user's process still works
        events = [json.loads(line) for line in run.stdout().splitlines() if secret in line]
        if not any(e.get("uid") == NOBODY and e.get("comm") for e in events):
            fail(f"no event on {secret} attributed to uid {NOBODY} with its comm: {events}")
    if backend == "inotify":
        test_watch_unprivileged(fstrail, base)


def test_watch_unprivileged(fstrail, base):
    """inotify as a user: nothing to keep, the bounding set cannot be lowered; the rest applies."""
    tree = os.path.join(base, "mine")
    os.mkdir(tree, 0o700)
    os.chown(tree, NOBODY, NOBODY)
    argv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            fstrail, "watch", "--backend", "inotify", "--json", tree]
    run = Running(argv, "watching", base)
    with open(f"/proc/{run.proc.pid}/status") as f:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    if int(status["CapEff"], 16) or int(status["CapPrm"], 16) or status["NoNewPrivs"] != "1" or status["Seccomp"] != "2":
        fail(f"unprivileged watch: CapEff {status['CapEff']} NoNewPrivs {status['NoNewPrivs']} "
             f"Seccomp {status['Seccomp']}")
    as_nobody(f"echo x > {tree}/file")
    wait_for(lambda: f"{tree}/file" in run.stdout(), f"an event on {tree}/file")
    if run.stop() != 0:
        fail(f"unprivileged watch exited {run.proc.returncode}:\n{run.stderr()}")
    print("watch/inotify as nobody: CapEff 0, NoNewPrivs 1, Seccomp 2; events arrive")


def test_record(fstrail, backend, base):
    tree = make_tree(base)
    db = os.path.join(base, "history.db")
    run = Running([fstrail, "record", "--backend", backend, *MODE_ARGS, "--db", db,
                   "--spool", os.path.join(base, "spool"), tree], "recording", base)
    check_status(run.proc.pid, "record", backend)
    secret = nobody_writes_in_private_dir(tree)
    time.sleep(1.0)
    if run.stop() != 0:
        fail(f"record exited {run.proc.returncode}:\n{run.stderr()}")
    q = subprocess.run([fstrail, "query", "--db", db, "--path", secret, "--json"], capture_output=True, text=True)
    rows = [json.loads(line) for line in q.stdout.splitlines() if line.strip()]
    if q.returncode != 0 or not rows:
        fail(f"record stored nothing on {secret} (query {q.returncode}): {q.stderr}")
    print(f"record/{backend}: {len(rows)} event(s) on {secret} stored under the filter")
    # A password in --db (PostgreSQL down: the events go to the spool, under the filter too).
    password = "s3cret-" + str(os.getpid())
    url = f"postgresql://fstrail:{password}@127.0.0.1:1/fstrail?connect_timeout=1"
    run = Running([fstrail, "record", "--backend", backend, *MODE_ARGS, "--db", url,
                   "--spool", os.path.join(base, "spool-pg"), tree], "recording", base)
    with open(f"/proc/{run.proc.pid}/cmdline", "rb") as f:
        cmdline = f.read()
    if password.encode() in cmdline:
        fail(f"the password is readable in /proc/PID/cmdline: {cmdline!r}")
    check_status(run.proc.pid, "record", backend)
    as_nobody(f"echo z > {tree}/while-down")
    time.sleep(1.0)
    if run.stop() != 0:
        fail(f"record (database down) exited {run.proc.returncode}:\n{run.stderr()}")
    print(f"record/{backend}: password absent from /proc/PID/cmdline; spooling under the filter works")


def test_guard(fstrail, backend, base):
    tree = make_tree(base)
    config = os.path.join(base, "guard.toml")
    with open(config, "w") as f:
        f.write(f'[[guard]]\nname = "svc"\npath = "{tree}"\nowner = {NOBODY}\ngroup = {NOBODY}\n'
                f'mode_max = "0750"\nremediate = true\n')
    run = Running([fstrail, "guard", "--backend", backend, *MODE_ARGS, "--json", "--config", config],
                  "guarding", base)
    check_status(run.proc.pid, "guard", backend)
    as_nobody(f"mkdir -m 0700 {tree}/private")
    victim = os.path.join(tree, "private", "made-by-root")
    with open(victim, "w") as f:
        f.write("x")
    os.chmod(victim, 0o644)
    wait_for(lambda: os.stat(victim).st_uid == NOBODY, f"{victim} chowned back to nobody")
    # chmod of a file this process does not own (CAP_FOWNER).
    shared = os.path.join(tree, "private", "too-open")
    as_nobody(f"touch {shared}; chmod 0666 {shared}")
    wait_for(lambda: os.stat(shared).st_mode & 0o777 == 0o640, f"{shared} chmoded back to 0640")
    if run.stop() != 0:
        fail(f"guard exited {run.proc.returncode}:\n{run.stderr()}")
    print(f"guard/{backend}: a root-made file and a 0666 file in a 0700 directory were remediated under the filter")


def main():
    if len(sys.argv) != 4:
        fail("usage: sandbox_test.py FSTRAIL watch|record|guard BACKEND")
    if os.geteuid() != 0:
        fail("needs root")
    fstrail, command, backend = sys.argv[1:]
    pwd.getpwuid(NOBODY)
    base = tempfile.mkdtemp(prefix=f"fstrail-sandbox-{command}-")
    try:
        {"watch": test_watch, "record": test_record, "guard": test_guard}[command](fstrail, backend, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
