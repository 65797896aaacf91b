#!/usr/bin/env python3
"""bpf-tracepoint in kernel-read mode against the real kernel (root, host tier).

Runs `fstrail watch --backend bpf-tracepoint --tracepoint-mode kernel --json` and checks
what string mode got wrong (issue 14): a process that walks to a directory by fds and
fchdir's into it, rsync as an unprivileged user, the actor of processes that exited
before their events were read (euid, login uid), the executable file behind a symlinked
name (sh -> dash), a chroot inside a private mount namespace, and 10 000 roots.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

NOBODY = 65534


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


class Watcher:
    def __init__(self, fstrail, roots, extra=()):
        self.out = tempfile.TemporaryFile(mode="w+")
        self.err = tempfile.TemporaryFile(mode="w+")
        argv = [fstrail, "watch", "--backend", "bpf-tracepoint", "--tracepoint-mode", "kernel", "--json", *extra]
        self.proc = subprocess.Popen(argv + list(roots), stdout=self.out, stderr=self.err)
        want = f"watching {len(roots)} path(s) with bpf-tracepoint"
        deadline = time.time() + 120
        while time.time() < deadline:
            self.err.seek(0)
            text = self.err.read()
            if want in text:
                if "kernel-read mode" not in text:
                    fail(f"not in kernel-read mode: {text}")
                return
            if self.proc.poll() is not None:
                fail(f"fstrail exited: {text}")
            time.sleep(0.1)
        fail("fstrail did not start")

    def stop(self):
        time.sleep(1.0)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        self.out.seek(0)
        self.err.seek(0)
        events = [json.loads(line) for line in self.out if line.strip()]
        return events, self.err.read()


def files_of(events, kind=None):
    return [e for e in events if e.get("kind") != "lost" and (kind is None or e["kind"] == kind)]


def check_no_loss(events, err):
    lost = [e for e in events if e.get("kind") == "lost"]
    if lost:
        fail(f"lost events: {lost}\n{err}")


def test_fd_walk_and_fchdir(fstrail, base):
    root = os.path.join(base, "walk")
    os.makedirs(os.path.join(root, "d"))
    w = Watcher(fstrail, [root])
    script = f"""
import os
fd = os.open("/", os.O_PATH | os.O_DIRECTORY)
for name in {[c for c in (root + "/d").split("/") if c]!r}:
    fd = os.open(name, os.O_PATH | os.O_DIRECTORY, dir_fd=fd)
os.fchdir(fd)
f = os.open("made_in_d", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(f, b"x")
os.close(f)
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd="/")
    events, err = w.stop()
    check_no_loss(events, err)
    creates = files_of(events, "create")
    if [e["path"] for e in creates] != [f"{root}/d/made_in_d"]:
        fail(f"fd walk + fchdir: creates {[e['path'] for e in creates]}\n{err}")
    modifies = [e["path"] for e in files_of(events, "modify")]
    if modifies != [f"{root}/d/made_in_d"]:
        fail(f"fd walk + fchdir: modifies {modifies}")
    print("ok: fd walk + fchdir")


def test_rsync_as_nobody(fstrail, base):
    root = os.path.join(base, "rsync")
    src, dst = os.path.join(root, "src"), os.path.join(root, "dst")
    for d in ("html/css", "html/js", "docs"):
        os.makedirs(os.path.join(src, d))
    for i, rel in enumerate(["index.txt", "html/a.html", "html/css/s.css", "html/js/x.js", "docs/readme"]):
        with open(os.path.join(src, rel), "w") as f:
            f.write("content %d\n" % i)
    os.makedirs(dst)
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", root], check=True)
    w = Watcher(fstrail, [root])
    subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                    "rsync", "-a", "src/", "dst/"], check=True, cwd=root)
    events, err = w.stop()
    check_no_loss(events, err)
    evs = files_of(events)
    if not evs:
        fail("rsync: no events")
    final = set()
    for dirpath, dirs, files in os.walk(dst):
        for n in dirs + files:
            final.add(os.path.join(dirpath, n))
    for e in evs:
        for p in [e["path"]] + ([e["old_path"]] if e.get("old_path") else []):
            if not p.startswith(dst + "/"):
                fail(f"rsync: path outside dst: {e}")
            # a temp file rsync renamed: its directory exists, its name is rsync's
            parent = os.path.dirname(p)
            if p not in final and not (parent in final or parent == dst):
                fail(f"rsync: path that never existed: {e}")
            if p not in final and not os.path.basename(p).startswith("."):
                fail(f"rsync: path neither final nor a temp name: {e}")
        if e["uid"] != NOBODY or e.get("euid") != NOBODY:
            fail(f"rsync: wrong actor: {e}")
    renamed_to = {e["path"] for e in files_of(events, "rename")}
    for rel in ["index.txt", "html/a.html", "html/css/s.css", "html/js/x.js", "docs/readme"]:
        if os.path.join(dst, rel) not in renamed_to and os.path.join(dst, rel) not in {e["path"] for e in evs}:
            fail(f"rsync: no event for dst/{rel}: {[(e['kind'], e['path']) for e in evs]}")
    mkdirs = {e["path"] for e in files_of(events, "mkdir")}
    for d in ("html", "html/css", "html/js", "docs"):
        if os.path.join(dst, d) not in mkdirs:
            fail(f"rsync: no mkdir of dst/{d}: {sorted(mkdirs)}")
    print(f"ok: rsync -a as nobody ({len(evs)} events, every path right)")


def test_short_lived_actor_and_exe(fstrail, base):
    root = os.path.join(base, "actor")
    os.makedirs(root)
    os.chmod(root, 0o777)
    w = Watcher(fstrail, [root])
    # A login uid, then effective ids that differ from the real ones; every process exits at once.
    # (Not through sh: dash resets an effective uid that differs from the real one.)
    script = (f"echo 4321 > /proc/self/loginuid && "
              f"exec setpriv --euid={NOBODY} --egid={NOBODY} --clear-groups {sys.executable} -c "
              f"'open(\"{root}/by_nobody\", \"w\").write(\"x\")'")
    for _ in range(20):
        subprocess.run(["sh", "-c", script], check=True)
    subprocess.run(["sh", "-c", f"echo y > {root}/by_sh"], check=True)
    time.sleep(0.5)
    events, err = w.stop()
    check_no_loss(events, err)
    mine = [e for e in files_of(events) if e["path"] == f"{root}/by_nobody"]
    if len(mine) < 20:
        fail(f"short-lived writers: {len(mine)} events, want >= 20: {mine[:3]}")
    for e in mine:
        if e["uid"] != 0 or e.get("euid") != NOBODY or e.get("egid") != NOBODY or e.get("loginuid") != 4321:
            fail(f"short-lived writer: wrong actor {e}")
        if e.get("actor_source") != "kernel" or e.get("ppid") is None:
            fail(f"short-lived writer: actor not from the kernel {e}")
        if e.get("exe") != os.path.realpath(sys.executable):
            fail(f"short-lived writer: exe {e.get('exe')} (want {os.path.realpath(sys.executable)})")
    by_sh = [e for e in files_of(events) if e["path"] == f"{root}/by_sh"]
    if not by_sh or any(e.get("exe") != "/usr/bin/dash" for e in by_sh):
        fail(f"sh -c: exe is not /usr/bin/dash: {by_sh}")
    print("ok: euid, login uid, ppid and exe of processes gone before their events were read")


def test_chroot_in_mount_namespace(fstrail, base):
    root = os.path.join(base, "chroot")
    jail = os.path.join(root, "jail")
    os.makedirs(jail)
    w = Watcher(fstrail, [root])
    script = f"""
import os
os.chroot({jail!r})
os.chdir("/")
f = os.open("/made_in_jail", os.O_CREAT | os.O_WRONLY, 0o644)
os.close(f)
os.mkdir("/dir_in_jail")
os.rename("/made_in_jail", "/dir_in_jail/moved")
"""
    subprocess.run(["unshare", "-m", sys.executable, "-c", script], check=True)
    events, err = w.stop()
    check_no_loss(events, err)
    got = [(e["kind"], e["path"], e.get("old_path")) for e in files_of(events)]
    want = [("create", f"{jail}/made_in_jail", None), ("mkdir", f"{jail}/dir_in_jail", None),
            ("rename", f"{jail}/dir_in_jail/moved", f"{jail}/made_in_jail")]
    if got != want:
        fail(f"chroot in unshare -m: {got}\n{err}")
    print("ok: chroot inside a private mount namespace: real paths")


def test_ten_thousand_roots(fstrail, base):
    top = os.path.join(base, "many")
    roots = [os.path.join(top, "r%05d" % i) for i in range(10000)]
    for r in roots:
        os.makedirs(r)
    w = Watcher(fstrail, roots)
    last = roots[-1]
    subprocess.run(["sh", "-c", f"mkdir {last}/sub && echo z > {last}/sub/f && echo o > {top}/outside"], check=True)
    events, err = w.stop()
    check_no_loss(events, err)
    got = [(e["kind"], e["path"]) for e in files_of(events)]
    want = [("mkdir", f"{last}/sub"), ("create", f"{last}/sub/f"), ("modify", f"{last}/sub/f")]
    if got != want:
        fail(f"10 000 roots: {got}\n{err[-2000:]}")
    print("ok: 10 000 roots, events under the last one")


def main():
    if len(sys.argv) != 2:
        fail("usage: bpf_tracepoint_kernel_read.py FSTRAIL")
    if os.geteuid() != 0:
        fail("needs root: the bpf-tracepoint backend loads BPF programs")
    fstrail = sys.argv[1]
    base = tempfile.mkdtemp(prefix="fstrail-kread-")
    os.chmod(base, 0o755)
    try:
        test_fd_walk_and_fchdir(fstrail, base)
        test_rsync_as_nobody(fstrail, base)
        test_short_lived_actor_and_exe(fstrail, base)
        test_chroot_in_mount_namespace(fstrail, base)
        test_ten_thousand_roots(fstrail, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
