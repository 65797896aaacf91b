#!/usr/bin/env python3
"""Save-to-command-start latency and run counts: `fstrail run` vs its peers (issue 18).

Usage: devtools_latency.py FSTRAIL [--saves N] [--files N] [--tools a,b,...]

For each tool, on a fresh tree: N editor-style atomic saves (write a temporary file, rename it
over the target), one every 250 ms; the latency of each is from just before the save to the
moment the command started (the command is the same for every tool: `date +%s%N >> LOG`), and
the number of runs each save caused (spurious runs). Then a `git checkout` that adds FILES files:
how many runs it caused (the goal is exactly 1). Peers: entr, an inotifywait loop (watchexec-style
shell loop), fswatch, chokidar (npm, installed into ~/.cache/fstrail-bench). Prints a Markdown
table. Every tool runs as the calling user; run as root, fstrail picks an eBPF backend, so
`fstrail run --backend inotify` is measured too.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

CACHE = os.path.expanduser("~/.cache/fstrail-bench")
CHOKIDAR_JS = r"""
const chokidar = require('chokidar');
const { execFileSync } = require('child_process');
const [dir, log] = process.argv.slice(2);
let timer = null;
const w = chokidar.watch(dir, { ignoreInitial: true, ignored: /(^|[\/\\])\.git([\/\\]|$)/, atomic: true });
w.on('all', () => {  // a 50 ms debounce, as fstrail's default
  clearTimeout(timer);
  timer = setTimeout(() => execFileSync('sh', ['-c', `date +%s%N >> ${log}`]), 50);
});
w.on('ready', () => console.error('ready'));
"""


def ensure_chokidar():
    if not os.path.exists(os.path.join(CACHE, "node_modules", "chokidar")):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--prefix", CACHE, "chokidar@3"], check=True,
                       stdout=subprocess.DEVNULL)
    path = os.path.join(CACHE, "watch.js")
    with open(path, "w") as f:
        f.write(CHOKIDAR_JS)
    return path


def commands(tool, tree, log, fstrail):
    rec = f"date +%s%N >> {log}"
    if tool == "fstrail":
        return [fstrail, "run", "--postpone", tree, "--", "sh", "-c", rec]
    if tool == "fstrail-inotify":
        return [fstrail, "run", "--backend", "inotify", "--postpone", tree, "--", "sh", "-c", rec]
    if tool == "entr":
        # -d: also when a file is added to a watched directory (entr then exits: loop it).
        return ["sh", "-c", f"while true; do find {tree} -path '*/.git' -prune -o -type f -print | "
                            f"entr -dnp sh -c '{rec}'; done"]
    if tool == "inotifywait":
        return ["sh", "-c", f"while inotifywait -qq -r -e close_write,moved_to,create,delete,move "
                            f"--exclude '/\\.git/' {tree}; do {rec}; done"]
    if tool == "fswatch":
        return ["sh", "-c", f"fswatch -o -r --latency 0.05 -e '/\\.git/' {tree} | "
                            f"while read n; do {rec}; done"]
    if tool == "chokidar":
        return ["node", ensure_chokidar(), tree, log]
    raise SystemExit(f"unknown tool {tool}")


def lines(log):
    try:
        with open(log) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def wait_quiet(log, seconds):
    """Waits until the log has not grown for `seconds`."""
    n, since = len(lines(log)), time.time()
    while time.time() - since < seconds:
        time.sleep(0.05)
        if len(lines(log)) != n:
            n, since = len(lines(log)), time.time()
    return n


def make_tree(base, files):
    tree = os.path.join(base, "tree")
    os.makedirs(tree)
    git = ["git", "-C", tree, "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run(["git", "init", "-q", "-b", "small", tree], check=True)
    for i in range(100):
        with open(os.path.join(tree, f"s{i}.c"), "w") as f:
            f.write("x\n")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "small"], check=True)
    subprocess.run(git + ["checkout", "-q", "-b", "big"], check=True)
    for d in range(files // 100):
        os.makedirs(os.path.join(tree, f"d{d}"))
        for i in range(100):
            with open(os.path.join(tree, f"d{d}", f"f{i}.c"), "w") as f:
                f.write(f"{d}{i}\n")
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "big"], check=True)
    subprocess.run(git + ["checkout", "-q", "small"], check=True)
    return tree


def measure(tool, args):
    base = tempfile.mkdtemp(prefix=f"fstrail-bench-{tool}-")
    try:
        tree = make_tree(base, args.files)
        log = os.path.join(base, "runs.log")
        proc = subprocess.Popen(commands(tool, tree, log, args.fstrail), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(3.0)  # every tool's start-up (a BPF load, a crawl)
        latencies, spurious, missed = [], 0, 0
        for i in range(args.saves):
            target = os.path.join(tree, f"s{i % 100}.c")
            before = len(lines(log))
            t0 = time.time_ns()
            tmp = target + ".tmp~"
            with open(tmp, "w") as f:
                f.write(f"save {i}\n")
            os.rename(tmp, target)
            end = time.time() + 2
            while len(lines(log)) == before and time.time() < end:
                time.sleep(0.001)
            time.sleep(0.25)
            got = lines(log)[before:]
            if not got:
                missed += 1
                continue
            latencies.append((got[0] - t0) / 1e6)
            spurious += len(got) - 1
        before = wait_quiet(log, 0.5)
        subprocess.run(["git", "-C", tree, "checkout", "-q", "big"], check=True)
        checkout_runs = wait_quiet(log, 3.0) - before
        os.killpg(proc.pid, 15)
        proc.wait(10)
        latencies.sort()
        p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
        return {"tool": tool, "p50": statistics.median(latencies) if latencies else float("nan"), "p99": p(0.99),
                "spurious": spurious, "missed": missed, "checkout_runs": checkout_runs}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fstrail")
    ap.add_argument("--saves", type=int, default=200)
    ap.add_argument("--files", type=int, default=10000)
    ap.add_argument("--tools", default="fstrail,fstrail-inotify,entr,inotifywait,fswatch,chokidar")
    args = ap.parse_args()
    print(f"| tool | save→start p50 (ms) | p99 (ms) | spurious runs / {args.saves} saves | missed saves | "
          f"runs for a {args.files}-file checkout |")
    print("| --- | --- | --- | --- | --- | --- |")
    for tool in args.tools.split(","):
        r = measure(tool, args)
        print(f"| {r['tool']} | {r['p50']:.1f} | {r['p99']:.1f} | {r['spurious']} | {r['missed']} | "
              f"{r['checkout_runs']} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
