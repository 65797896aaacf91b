#!/usr/bin/env python3
"""What bpf-tracepoint costs the processes it watches, inside and outside the tree.

Root. Runs bench/fstrail_bench_fileops (each operation N times, best of 3 runs) in
a directory outside the watched tree without fstrail, then with `fstrail watch
--backend bpf-tracepoint DIR/watched` running: outside the tree and inside it.
Also prints the kernel's own run-time counters (kernel.bpf_stats_enabled) of the
dispatch programs of that fstrail process (the per-syscall programs are tail-called
from them and are accounted there), averaged over every syscall on the machine.
Usage: bench/bpf_tracepoint_cost.py BUILD_DIR [ITERATIONS]
"""
import json, os, subprocess, sys, tempfile, time

build = sys.argv[1]
n = sys.argv[2] if len(sys.argv) > 2 else "50000"
base = tempfile.mkdtemp(prefix="fstrail-cost-")
for d in ("watched", "outside"):
    os.makedirs(os.path.join(base, d))


def fileops(directory):
    best = {}
    for _ in range(3):
        out = subprocess.check_output([os.path.join(build, "bench", "fstrail_bench_fileops"), directory, n], text=True)
        for line in out.splitlines():
            name, value = line.rsplit(None, 2)[0], float(line.split()[-2])
            best[name] = min(best.get(name, value), value)
    return best


def dispatch_programs():
    progs = json.loads(subprocess.check_output(["bpftool", "prog", "show", "-j"]))
    return {p["id"]: p for p in progs if p.get("name", "").startswith("dispatch_")}


def dispatch_stats(ids):
    progs = dispatch_programs()
    return {progs[i]["name"]: (progs[i].get("run_time_ns", 0), progs[i].get("run_cnt", 0)) for i in ids if i in progs}


results = {"no fstrail": fileops(os.path.join(base, "outside"))}
old = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
others = set(dispatch_programs())  # (bpftool here cannot name a program's process)
err_path = os.path.join(base, "stderr")
watcher = subprocess.Popen([os.path.join(build, "fstrail"), "watch", "--backend", "bpf-tracepoint", "--json",
                            os.path.join(base, "watched")], stdout=subprocess.DEVNULL, stderr=open(err_path, "w"))
dispatch = {}
try:
    while "watching" not in open(err_path).read():
        time.sleep(0.1)
    ours = set(dispatch_programs()) - others
    for phase, directory in (("outside the tree", "outside"), ("inside the tree", "watched")):
        results[phase] = fileops(os.path.join(base, directory))
    # Separately: the run-time counters cost two clock reads per run themselves.
    open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
    for phase, directory in (("outside the tree", "outside"), ("inside the tree", "watched")):
        before = dispatch_stats(ours)
        subprocess.run([os.path.join(build, "bench", "fstrail_bench_fileops"), os.path.join(base, directory), n],
                       check=True, stdout=subprocess.DEVNULL)
        after = dispatch_stats(ours)
        for name, (t, c) in after.items():
            t0, c0 = before.get(name, (0, 0))
            dispatch.setdefault(name, {})[phase] = (t - t0) / max(c - c0, 1)
finally:
    watcher.send_signal(2)
    watcher.wait()
    open("/proc/sys/kernel/bpf_stats_enabled", "w").write(old)
    summary = open(err_path).read().strip().splitlines()[-1]
    subprocess.run(["rm", "-rf", base])

phases = list(results)
print(f"ns per operation, best of 3 x {n}:")
print(f"{'operation':<28}" + "".join(f"{p:>18}" for p in phases))
for op in results["no fstrail"]:
    print(f"{op:<28}" + "".join(f"{results[p][op]:>18.0f}" for p in phases))
print("\nkernel run time per syscall of the dispatchers (all syscalls on the machine):")
for name, by_phase in sorted(dispatch.items()):
    print(f"{name:<28}" + "".join(f"{p}: {v:.0f} ns   " for p, v in by_phase.items()))
print(summary)
