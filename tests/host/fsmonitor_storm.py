#!/usr/bin/env python3
"""git status with `fstrail fsmonitor` as core.fsmonitor must equal git status without it.

Random edit storms on a real repository with Debian's git: create, modify (same size
too), delete, rename (over an existing file too), atomic saves, chmod +x, directory
creation, renames and removals, untracked and ignored files, commits; changes between two
hook calls and during one. Every round compares `git status --porcelain` through the
hook (core.untrackedCache on) with git's own full scan (core.fsmonitor=false, no
untracked cache, no index write). git's trace2 tells whether the hook answered with paths
or with "/" (unsure), so a test where git always scans everything
(the hook never precise) fails instead of passing vacuously.

Usage: fsmonitor_storm.py FSTRAIL [--rounds N] [--seed S] [--as-user] [--small-hook]
  --as-user: run as nobody (inotify), not as root (fanotify where it starts).
  --small-hook: core.fsmonitor is fstrail-fsmonitor (beside FSTRAIL), not `FSTRAIL fsmonitor`.
"""
import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class Storm:
    def __init__(self, fstrail, base, rng, small_hook):
        self.fstrail = fstrail
        # `fstrail fsmonitor`, or the same hook in its own small executable beside fstrail.
        self.hook = os.path.join(os.path.dirname(fstrail), "fstrail-fsmonitor") if small_hook else f"{fstrail} fsmonitor"
        self.rng = rng
        self.work = os.path.join(base, "repo")
        self.env = dict(os.environ, HOME=base, XDG_RUNTIME_DIR=os.path.join(base, "run"), GIT_CONFIG_NOSYSTEM="1",
                        LC_ALL="C", FSTRAIL_WATCHD_IDLE_TIMEOUT="120")
        os.mkdir(self.env["XDG_RUNTIME_DIR"], 0o700)
        self.trace = os.path.join(base, "trace2")
        self.files = []
        self.dirs = []
        self.history = []  # (round, what was done), for a failure's report
        self.round = 0

    def git(self, *args):
        return run(["git", *args], cwd=self.work, env=self.env).stdout

    def setup(self, nfiles=300):
        os.mkdir(self.work)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.name", "storm")
        self.git("config", "user.email", "storm@example.com")
        self.git("config", "core.untrackedCache", "true")
        self.git("config", "core.fsmonitor", self.hook)
        with open(os.path.join(self.work, ".gitignore"), "w") as f:
            f.write("*.log\nbuild/\nignored-*/\n")
        for i in range(nfiles):
            d = os.path.join(self.work, *[f"d{self.rng.randrange(6)}" for _ in range(self.rng.randrange(4))])
            os.makedirs(d, exist_ok=True)
            self.write(os.path.join(d, f"f{i}.txt"), f"file {i}\n")
        self.git("add", "-A")
        self.git("commit", "-qm", "initial")

    def write(self, path, text, mode="w"):
        with open(path, mode) as f:
            f.write(text)

    def scan(self):
        self.files, self.dirs = [], []
        for root, dirs, files in os.walk(self.work):
            if ".git" in dirs:
                dirs.remove(".git")
            self.dirs.extend(os.path.join(root, d) for d in dirs)
            self.files.extend(os.path.join(root, f) for f in files)

    def some_dir(self):
        return self.rng.choice(self.dirs + [self.work])

    def new_name(self, prefix="n"):
        suffix = self.rng.choice([".txt", ".txt", ".log", ".c"])
        return f"{prefix}{self.rng.randrange(10**6)}{suffix}"

    def op(self):
        """One random change; the state of the tree is re-read each round (scan)."""
        r = self.rng
        log = lambda *what: self.history.append((self.round, kind, *(os.path.relpath(w, self.work) for w in what)))
        kind = r.choice(["create", "create", "modify", "modify", "same_size", "delete", "rename", "rename_over",
                         "atomic_save", "chmod", "mkdir_tree", "rename_dir", "rmtree", "ignored_dir", "move_out_in"])
        files = [f for f in self.files if os.path.exists(f)]
        dirs = [d for d in self.dirs if os.path.isdir(d)]
        if kind == "create" or not files:
            d = self.some_dir()
            path = os.path.join(d if os.path.isdir(d) else self.work, self.new_name())
            self.write(path, "new\n")
            log(path)
        elif kind == "modify":
            f = r.choice(files)
            self.write(f, f"more {r.random()}\n", "a")
            log(f)
        elif kind == "same_size":
            f = r.choice(files)
            data = open(f, "rb").read()
            if data:
                with open(f, "r+b") as out:
                    out.write(bytes([data[0] ^ 1]))
                log(f)
        elif kind == "delete":
            f = r.choice(files)
            os.unlink(f)
            log(f)
        elif kind == "rename":
            d = r.choice(dirs + [self.work])
            a, b = r.choice(files), os.path.join(d, self.new_name("r"))
            os.rename(a, b)
            log(a, b)
        elif kind == "rename_over":
            a, b = r.choice(files), r.choice(files)
            if a != b:
                os.rename(a, b)
                log(a, b)
        elif kind == "atomic_save":
            f = r.choice(files)
            tmp = f + ".tmp~"
            self.write(tmp, f"saved {r.random()}\n")
            os.rename(tmp, f)
            log(f)
        elif kind == "chmod":
            f = r.choice(files)
            os.chmod(f, os.stat(f).st_mode ^ 0o100)
            log(f)
        elif kind == "mkdir_tree":
            top = os.path.join(r.choice(dirs + [self.work]), f"t{r.randrange(10**6)}")
            os.makedirs(os.path.join(top, "a", "b"))
            for p in ("x.txt", "a/y.txt", "a/b/z.log", "a/b/w.txt"):
                self.write(os.path.join(top, p), "tree\n")
            log(top)
        elif kind == "rename_dir" and dirs:
            d = r.choice(dirs)
            target = os.path.join(r.choice([self.work, os.path.dirname(d)]), f"m{r.randrange(10**6)}")
            os.rename(d, target)
            log(d, target)
        elif kind == "rmtree" and dirs:
            d = r.choice(dirs)
            shutil.rmtree(d)
            log(d)
        elif kind == "ignored_dir":
            d = os.path.join(self.work, r.choice(["build", "ignored-x", "d0"]))
            os.makedirs(d, exist_ok=True)
            f = os.path.join(d, self.new_name("i"))
            self.write(f, "ignored?\n")
            log(f)
        elif kind == "move_out_in" and dirs:
            # A directory leaves the worktree and comes back elsewhere (or under the same name).
            d = r.choice(dirs)
            outside = os.path.join(os.path.dirname(self.work), "outside")
            os.rename(d, outside)
            self.write(os.path.join(outside, self.new_name("o")), "outside\n")
            back = d if r.random() < 0.5 else os.path.join(self.work, f"back{r.randrange(10**6)}")
            os.rename(outside, back)
            log(d, back)

    def status_hook(self, *args):
        # git's trace2 says whether the hook answered with paths ("apply_count") or "/".
        return run(["git", "status", "--porcelain", *args], cwd=self.work,
                   env=dict(self.env, GIT_TRACE2_PERF=self.trace)).stdout

    def status_plain(self):
        return run(["git", "--no-optional-locks", "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false",
                    "status", "--porcelain", "-uall"], cwd=self.work, env=self.env).stdout

    def status_plain_normal(self):
        return run(["git", "--no-optional-locks", "-c", "core.fsmonitor=false", "-c", "core.untrackedCache=false",
                    "status", "--porcelain"], cwd=self.work, env=self.env).stdout


def report_difference(s, round_no, hooked, plain):
    if os.environ.get("STORM_HISTORY"):
        with open(os.environ["STORM_HISTORY"], "w") as out:
            out.writelines(f"{entry}\n" for entry in s.history)
    hooked, plain = set(hooked.decode().splitlines()), set(plain.decode().splitlines())
    print(f"round {round_no}: git status differs with the hook: only with the hook {sorted(hooked - plain)}, "
          f"only in the full scan {sorted(plain - hooked)}", file=sys.stderr)
    for line in (hooked ^ plain):
        path = line[3:].rstrip("/")
        parts = path.split("/")
        prefixes = {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}
        for entry in s.history:
            if any(p in prefixes or p == path for p in entry[2:]):
                print(f"  {entry}", file=sys.stderr)


def storm(args):
    rng = random.Random(args.seed)
    base = tempfile.mkdtemp(prefix="fstrail-fsmon-storm-")
    if args.as_user:
        os.chown(base, 65534, 65534)
        os.setgid(65534)
        os.setgroups([])
        os.setuid(65534)
    s = Storm(args.fstrail, base, rng, args.small_hook)
    failures = 0
    try:
        s.setup()
        s.scan()
        s.status_hook()  # the first call starts the watcher and answers "/"
        start = time.monotonic()
        for round_no in range(args.rounds):
            s.round = round_no
            s.scan()
            during = round_no % 7 == 3
            if during:
                # Changes while git (and the hook) run: reported now or next time, never lost.
                worker = threading.Thread(target=lambda: [s.op() for _ in range(rng.randrange(1, 6))])
                worker.start()
                s.status_hook()
                worker.join()
                s.scan()
            for _ in range(rng.randrange(1, 6)):
                s.op()  # picks among what still exists
            if round_no % 50 == 49:
                s.git("add", "-A")
                s.git("commit", "-qm", f"round {round_no}", "--allow-empty")
            normal = round_no % 2 == 0
            s.round = round_no
            hooked = s.status_hook() if normal else s.status_hook("-uall")
            plain = s.status_plain_normal() if normal else s.status_plain()
            if hooked != plain:
                failures += 1
                report_difference(s, round_no, hooked, plain)
                if failures >= 5:
                    break
            if round_no % 100 == 99:
                print(f"round {round_no + 1}: {failures} differing, {time.monotonic() - start:.0f} s", flush=True)
        elapsed = time.monotonic() - start
        trace = open(s.trace, errors="replace").read().splitlines()
        queries = sum(1 for line in trace if "region_enter" in line and "fsm_hook" in line and "label:query" in line)
        precise = sum(1 for line in trace if "apply_count" in line)
        print(f"{round_no + 1} rounds in {elapsed:.1f} s as uid {os.getuid()}: {failures} differing; {queries} hook "
              f"calls, {precise} answered with paths, {queries - precise} with / or failed")
        if failures:
            return 1
        if precise < 0.95 * queries:
            print("the hook was not precise enough: git scanned everything too often", file=sys.stderr)
            return 1
        return 0
    finally:
        subprocess.run([args.fstrail, "watchd", "--stop"], env=s.env, capture_output=True)
        if not os.environ.get("STORM_KEEP"):
            shutil.rmtree(base, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("fstrail")
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--seed", type=int, default=18)
    p.add_argument("--as-user", action="store_true")
    p.add_argument("--small-hook", action="store_true", help="core.fsmonitor=fstrail-fsmonitor")
    args = p.parse_args()
    args.fstrail = os.path.abspath(args.fstrail)
    sys.exit(storm(args))


if __name__ == "__main__":
    main()
