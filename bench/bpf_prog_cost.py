#!/usr/bin/env python3
"""In-kernel cost of the bpf-tracepoint programs, inside vs outside the watched tree.

Root. Enables kernel.bpf_stats_enabled, starts `fstrail watch --backend
bpf-tracepoint` on DIR/watched, runs fstrail_bench_fileops in DIR/outside and then
in DIR/watched, and prints each program's average run time per invocation (ns) for
each phase, from the kernel's own run_time_ns/run_cnt counters.
Usage: bench/bpf_prog_cost.py BUILD_DIR [ITERATIONS]
"""
import json, os, subprocess, sys, tempfile, time

build = sys.argv[1]
n = sys.argv[2] if len(sys.argv) > 2 else "50000"
base = tempfile.mkdtemp(prefix="fstrail-progcost-")
for d in ("watched", "outside"):
    os.makedirs(os.path.join(base, d))

def prog_stats():
    progs = json.loads(subprocess.check_output(["bpftool", "prog", "show", "-j"]))
    return {p["name"]: (p.get("run_time_ns", 0), p.get("run_cnt", 0)) for p in progs
            if p.get("type") == "tracepoint"}

old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
err = open(os.path.join(base, "stderr"), "w+")
watcher = subprocess.Popen([os.path.join(build, "fstrail"), "watch", "--backend", "bpf-tracepoint", "--json",
                            os.path.join(base, "watched")], stdout=subprocess.DEVNULL, stderr=err)
try:
    while "watching" not in open(os.path.join(base, "stderr")).read():
        time.sleep(0.1)
    results = {}
    for phase in ("outside", "watched"):
        before = prog_stats()
        subprocess.run([os.path.join(build, "bench", "fstrail_bench_fileops"), os.path.join(base, phase), n],
                       check=True, stdout=subprocess.DEVNULL)
        after = prog_stats()
        for name, (t, c) in after.items():
            t0, c0 = before.get(name, (0, 0))
            if c - c0 > 0:
                results.setdefault(name, {})[phase] = ((t - t0) / (c - c0), c - c0)
    print(f"{'program':<22} {'outside ns/run':>15} {'inside ns/run':>15}   (runs outside / inside; includes other processes)")
    for name in sorted(results, key=lambda k: -results[k].get("watched", (0, 0))[0]):
        o = results[name].get("outside", (0, 0)); w = results[name].get("watched", (0, 0))
        if max(o[1], w[1]) < int(n) // 2:
            continue
        print(f"{name:<22} {o[0]:>15.0f} {w[0]:>15.0f}   ({o[1]} / {w[1]})")
finally:
    watcher.send_signal(2)
    watcher.wait()
    open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old)
    subprocess.run(["rm", "-rf", base])
