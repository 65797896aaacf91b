#!/usr/bin/env python3
"""Smoke test of the real binary with the bpf-tracepoint backend (root, host tier).

Runs `fstrail watch --backend bpf-tracepoint --json ROOT`, does file operations as
root and as uid 65534, with absolute paths and relative ones from another cwd, and
checks what was reported (and what was not). Usage: bpf_tracepoint_smoke.py FSTRAIL
"""
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NOBODY = 65534
# FSTRAIL_TRACEPOINT_MODE=auto|kernel|strings: which bpf-tracepoint mode to test (default auto).
MODE_ARGS = ["--tracepoint-mode", os.environ["FSTRAIL_TRACEPOINT_MODE"]] if os.environ.get("FSTRAIL_TRACEPOINT_MODE") else []


# argv: PATH FD. Writes PATH through FD (-1: the fd open gives) and exits without a close.
EXIT_WITHOUT_CLOSE = """
import os, resource, sys
path, want = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
if want >= 0:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want + 1), hard))
    os.dup2(fd, want)
    os.close(fd)
    fd = want
os.write(fd, b"x")
os._exit(0)
"""


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def sh(script, as_nobody=False, cwd=None):
    cmd = ["sh", "-ec", script]
    if as_nobody:
        cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] + cmd
    subprocess.run(cmd, check=True, cwd=cwd)


def main():
    if len(sys.argv) != 2:
        fail("usage: bpf_tracepoint_smoke.py FSTRAIL")
    if os.geteuid() != 0:
        fail("needs root: the bpf-tracepoint backend loads BPF programs")
    fstrail = sys.argv[1]
    base = tempfile.mkdtemp(prefix="fstrail-tp-")
    root = os.path.join(base, "watched")
    outside = os.path.join(base, "outside")
    os.makedirs(root)
    os.makedirs(outside)
    os.chmod(base, 0o755)
    os.chmod(root, 0o777)
    out_path = os.path.join(base, "events.jsonl")
    err_path = os.path.join(base, "stderr.txt")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        watcher = subprocess.Popen([fstrail, "watch", "--backend", "bpf-tracepoint", *MODE_ARGS, "--json", root],
                                   stdout=out, stderr=err)
    try:
        deadline = time.time() + 60
        while "watching" not in open(err_path).read():
            if watcher.poll() is not None:
                fail(f"fstrail exited early: {open(err_path).read()}")
            if time.time() > deadline:
                fail("fstrail did not start within 60 s")
            time.sleep(0.1)

        sh(f"""
            echo hello > {root}/a.txt
            mkdir -p {root}/d/e/f
            mv {root}/a.txt {root}/d/b.txt
            chmod 640 {root}/d/b.txt
            chown {NOBODY}:{NOBODY} {root}/d/b.txt
            ln -s b.txt {root}/d/sym
            ln {root}/d/b.txt {root}/hard
            truncate -s 0 {root}/hard
            rm {root}/hard
            echo outside > {outside}/o.txt
            mkdir {outside}/odir
        """)
        # Relative paths from another cwd, and a chdir into the tree.
        sh("echo rel > ../watched/rel.txt; cd ../watched/d; touch inner.txt; mkdir sub; cd ..; rm -r d/e",
           cwd=outside)
        sh(f"mkdir {root}/nobody; echo n > {root}/nobody/n.txt; cd {root}/nobody && touch rel_n", as_nobody=True)
        # Written, never closed: exit closes the file. On a low fd, a high one (exit visits
        # the process's fds up to the highest it used) and one past that walk's bound.
        if resource.getrlimit(resource.RLIMIT_NOFILE)[1] <= 5000:
            fail("the test needs fd 5000: raise the hard RLIMIT_NOFILE (ulimit -Hn) above 5000")
        for name, fd in (("exit3.txt", None), ("exit3000.txt", 3000), ("exit5000.txt", 5000)):
            subprocess.run([sys.executable, "-c", EXIT_WITHOUT_CLOSE, f"{root}/{name}", str(fd or -1)], check=True)
        time.sleep(1.5)
    finally:
        watcher.send_signal(signal.SIGINT)
        try:
            watcher.wait(timeout=20)
        except subprocess.TimeoutExpired:
            watcher.kill()
            fail("fstrail did not stop on SIGINT")

    events = [json.loads(line) for line in open(out_path)]
    def find(kind, path, **fields):
        for e in events:
            if e["kind"] == kind and e["path"] == path and all(e.get(k) == v for k, v in fields.items()):
                return e
        fail(f"missing {kind} {path} {fields}; got:\n" + "\n".join(f"{e['kind']} {e['path']}" for e in events))

    me = os.getuid()
    find("create", f"{root}/a.txt", uid=me, comm="sh", actor_source="kernel", backend="bpf-tracepoint")
    find("modify", f"{root}/a.txt", uid=me)
    for d in ("d", "d/e", "d/e/f"):
        find("mkdir", f"{root}/{d}", is_dir=True, comm="mkdir", exe="/usr/bin/mkdir")
    find("rename", f"{root}/d/b.txt", old_path=f"{root}/a.txt", comm="mv")
    find("chmod", f"{root}/d/b.txt", new_mode=0o100640)  # S_IFREG | 0640
    find("chown", f"{root}/d/b.txt", new_uid=NOBODY, new_gid=NOBODY)
    find("symlink", f"{root}/d/sym")
    find("link", f"{root}/hard")
    find("truncate", f"{root}/hard")
    find("delete", f"{root}/hard", comm="rm")
    find("create", f"{root}/rel.txt")
    find("create", f"{root}/d/inner.txt", comm="touch")
    find("mkdir", f"{root}/d/sub")
    find("rmdir", f"{root}/d/e/f", comm="rm")
    find("rmdir", f"{root}/d/e", comm="rm")
    made = find("mkdir", f"{root}/nobody", uid=NOBODY, gid=NOBODY)
    # euid is read from /proc afterwards: a process already gone leaves it null, never wrong.
    if made["euid"] not in (NOBODY, None):
        fail(f"mkdir by uid {NOBODY} reported euid {made['euid']}")
    find("create", f"{root}/nobody/n.txt", uid=NOBODY)
    find("create", f"{root}/nobody/rel_n", uid=NOBODY, comm="touch")
    for path in (f"{root}/a.txt", f"{root}/exit3.txt", f"{root}/exit3000.txt", f"{root}/exit5000.txt"):
        if sum(1 for e in events if e["kind"] == "modify" and e["path"] == path) != 1:
            fail(f"expected exactly one modify of {path} (one open-write-close, or write-exit)")
    for e in events:
        if not (e["path"] == root or e["path"].startswith(root + "/")):
            fail(f"event outside the watched tree: {e}")
        if e["pid"] is None or e["tid"] is None or e["comm"] is None:
            fail(f"kernel-exact actor fields missing: {e}")
    stderr = open(err_path).read()
    if "dropped a record" in stderr:
        fail(f"records dropped:\n{stderr}")
    print(f"ok: {len(events)} events checked")
    check_ring_overflow(fstrail, base, root)
    shutil.rmtree(base)


def check_ring_overflow(fstrail, base, root):
    """Stops the reader while more records are written than the ring buffer holds:
    the loss must come out as `lost` events and in the summary, never silently."""
    out_path = os.path.join(base, "overflow.jsonl")
    err_path = os.path.join(base, "overflow.err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        watcher = subprocess.Popen([fstrail, "watch", "--backend", "bpf-tracepoint", *MODE_ARGS, "--json", root],
                                   stdout=out, stderr=err)
    try:
        while "watching" not in open(err_path).read():
            if watcher.poll() is not None:
                fail(f"fstrail exited early: {open(err_path).read()}")
            time.sleep(0.1)
        os.kill(watcher.pid, signal.SIGSTOP)
        # ~200 bytes per record, 3 records per file: well past the 8 MiB ring.
        long_name = "x" * 200
        for i in range(30000):
            path = os.path.join(root, f"{long_name}{i}")
            with open(path, "w") as f:
                f.write("x")
            os.unlink(path)
        os.kill(watcher.pid, signal.SIGCONT)
        time.sleep(2)
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=30)
    lost = [json.loads(line) for line in open(out_path) if '"kind":"lost"' in line]
    if not lost or sum(e["lost"] for e in lost) <= 0:
        fail("no lost event after overflowing the ring buffer")
    summary = open(err_path).read().strip().splitlines()[-1]
    if ", 0 lost" in summary or "lost" not in summary:
        fail(f"summary does not show the loss: {summary}")
    print(f"ok: ring overflow reported ({sum(e['lost'] for e in lost)} lost): {summary}")


if __name__ == "__main__":
    main()
