#!/usr/bin/env python3
"""`git status` on a 100 000-file worktree after 10 changed files: no hook, `fstrail
fsmonitor`, fstrail-fsmonitor (the same hook in its own small executable), and Watchman
behind git's fsmonitor-watchman sample hook, in the same run.

Each mode keeps its own index (GIT_INDEX_FILE: its own fsmonitor token and untracked
cache) over the same worktree, so the modes take turns within every round on the same
10 changes, and noise from other load hits them alike. core.untrackedCache is on for
all. Then `fstrail watchd` alone: the time from its start to its first answer on that
worktree (every directory watched) and its memory (VmRSS, VmHWM).
Runs as an ordinary user (nobody, when started as root).

  bench/fsmonitor_git_status.py BUILD/fstrail [--files 100000] [--rounds 11] [--keep DIR [--prepare]]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SAMPLE_HOOK = "/usr/share/git-core/templates/hooks/fsmonitor-watchman.sample"


def as_nobody_if_root():
    if os.getuid() != 0:
        return
    os.execvp("setpriv", ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--reset-env",
                          sys.executable, *sys.argv])


def make_worktree(work, files, env):
    os.makedirs(work)
    per_dir = 100
    for i in range(files):
        d = os.path.join(work, f"d{i // (per_dir * 100)}", f"s{(i // per_dir) % 100}")
        if i % per_dir == 0:
            os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.c"), "w") as f:
            f.write(f"int f{i};\n")
    git = lambda *a: subprocess.run(["git", *a], cwd=work, env=env, check=True, capture_output=True)
    git("init", "-q")
    git("config", "user.name", "bench")
    git("config", "user.email", "bench@example.com")
    git("config", "core.untrackedCache", "true")
    git("add", "-A")
    git("commit", "-qm", "100k files")


def timed(cmd, cwd, env):
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    as_nobody_if_root()
    p = argparse.ArgumentParser()
    p.add_argument("fstrail")
    p.add_argument("--files", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=11)
    p.add_argument("--keep", help="reuse/keep the worktree in this directory")
    p.add_argument("--prepare", action="store_true", help="only make the worktree (with --keep)")
    args = p.parse_args()
    fstrail = os.path.abspath(args.fstrail)
    base = args.keep or tempfile.mkdtemp(prefix="fstrail-bench-fsmon-")
    os.makedirs(base, exist_ok=True)
    run_dir = os.path.join(base, "run")
    os.makedirs(run_dir, mode=0o700, exist_ok=True)
    env = dict(os.environ, HOME=base, XDG_RUNTIME_DIR=run_dir, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C",
               PATH="/usr/bin:/bin", WATCHMAN_SOCK=os.path.join(run_dir, "watchman.sock"))
    work = os.path.join(base, "work")
    if not os.path.isdir(work):
        t = time.perf_counter()
        make_worktree(work, args.files, env)
        print(f"worktree: {args.files} files in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    if args.prepare:
        return
    small_hook = os.path.join(os.path.dirname(fstrail), "fstrail-fsmonitor")
    modes = {"none": "false", "fstrail": f"{fstrail} fsmonitor", "fstrail-fsmonitor": small_hook}
    watchman = None
    if shutil.which("watchman") and os.path.exists(SAMPLE_HOOK):
        hook = os.path.join(base, "fsmonitor-watchman")
        shutil.copy(SAMPLE_HOOK, hook)
        os.chmod(hook, 0o755)
        st = os.path.join(run_dir, "watchman")
        watchman = subprocess.Popen(["watchman", "--foreground", f"--sockname={env['WATCHMAN_SOCK']}",
                                     f"--statefile={st}.state", f"--logfile={st}.log", f"--pidfile={st}.pid"],
                                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)
        modes["watchman"] = hook
    else:
        print("watchman or git's fsmonitor-watchman sample missing: not compared", file=sys.stderr)
    index = os.path.join(work, ".git", "index")
    for mode in modes:
        shutil.copy(index, f"{index}.{mode}")
    status = {m: ["git", "-c", f"core.fsmonitor={hook}", "status"] for m, hook in modes.items()}
    envs = {m: dict(env, GIT_INDEX_FILE=f"{index}.{m}") for m in modes}
    try:
        for m in modes:  # warm up: the watchers learn the worktree, the indexes their tokens
            for _ in range(3):
                timed(status[m], work, envs[m])
        times = {m: [] for m in modes}
        for r in range(args.rounds):
            for i in range(10):
                n = (r * 10 + i) * 997 % args.files
                path = os.path.join(work, f"d{n // 10000}", f"s{(n // 100) % 100}", f"f{n}.c")
                with open(path, "a") as f:
                    f.write(f"// round {r}\n")
            order = list(modes)[r % len(modes):] + list(modes)[:r % len(modes)]
            for m in order:
                times[m].append(timed(status[m], work, envs[m]))
        print(f"git status, {args.files} files, 10 changed, median of {args.rounds} (min-max), s:")
        for m in modes:
            print(f"  {m:17} {statistics.median(times[m]):.3f} ({min(times[m]):.3f}-{max(times[m]):.3f})")
        startup_and_memory(fstrail, work, env)
    finally:
        subprocess.run([fstrail, "watchd", "--stop"], env=env, capture_output=True)
        if watchman:
            watchman.terminate()
            watchman.wait()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)


def startup_and_memory(fstrail, work, env):
    subprocess.run([fstrail, "watchd", "--stop"], env=env, capture_output=True)
    start = time.perf_counter()
    watchd = subprocess.Popen([fstrail, "watchd", "--idle-timeout", "600"], env=env, stderr=subprocess.DEVNULL)
    first = subprocess.run([fstrail, "fsmonitor", "2", "0"], cwd=work, env=env, check=True, capture_output=True)
    startup = time.perf_counter() - start
    token = first.stdout.split(b"\0")[0].decode()
    small = os.path.join(os.path.dirname(fstrail), "fstrail-fsmonitor")
    hook = [timed([fstrail, "fsmonitor", "2", token], work, env) for _ in range(21)]
    small_hook = [timed([small, "2", token], work, env) for _ in range(21)]
    status = open(f"/proc/{watchd.pid}/status").read().splitlines()
    mem = {line.split(":")[0]: line.split(":")[1].strip() for line in status if line.startswith(("VmRSS", "VmHWM"))}
    print(f"fstrail watchd: start to first answer {startup:.2f} s; VmRSS {mem['VmRSS']}, VmHWM {mem['VmHWM']}; "
          f"hook alone (no change), median: fstrail fsmonitor {statistics.median(hook) * 1000:.1f} ms, "
          f"fstrail-fsmonitor {statistics.median(small_hook) * 1000:.1f} ms")
    watchd.terminate()
    watchd.wait()


if __name__ == "__main__":
    main()
