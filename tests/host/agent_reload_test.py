#!/usr/bin/env python3
"""`fstrail agent` reloading under load (root, host tier).

A writer creates numbered files (up to 4000 a second) in a tree that stays watched;
after 2000 of them the configuration changes (a [[watch]] root added, one removed, a guard
rule tightened) and SIGHUP is sent; 2000 files later, SIGTERM. In SQLite afterwards: every file's create
exactly once and nothing else under that tree, no loss; the new root's events stored; the
removed root's events from before the reload stored, from after it not; the tightened rule
alerting (log and database); a bad file on a second SIGHUP named with its
line and the running configuration kept. Usage: agent_reload_test.py FSTRAIL BACKEND
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

WRITER = """
import os, sys, time
root, stop, rate = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = time.monotonic()
n = 0
while not (n % 100 == 0 and os.path.exists(stop)):
    os.close(os.open(f"{root}/f{n}", os.O_WRONLY | os.O_CREAT, 0o644))
    n += 1
    ahead = n / rate - (time.monotonic() - start)
    if ahead > 0:
        time.sleep(ahead)
print(n)
"""


def config(base, backend, watched, mode_max):
    text = f"""[agent]
backend = "{backend}"
db = "sqlite://{base}/events.db"
spool = "{base}/spool"
log = "{base}/agent.log"
"""
    for name in watched:
        text += f"""
[[watch]]
path = "{base}/{name}"
events = ["create", "modify", "delete", "rename", "chmod", "chown"]
"""
    text += f"""
[[guard]]
name = "svc"
path = "{base}/guarded"
owner = 0
group = 0
mode_max = "{mode_max}"
"""
    return text


def wait_for_log(path, needle, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and needle in open(path, errors="replace").read():
            return
        time.sleep(0.05)
    sys.exit(f"FAIL: '{needle}' not in {path} after {timeout}s:\n" + (open(path).read() if os.path.exists(path) else ""))


def wait_for_files(directory, count, timeout=120.0):
    deadline = time.monotonic() + timeout
    while len(os.listdir(directory)) < count:
        if time.monotonic() > deadline:
            sys.exit(f"FAIL: fewer than {count} files in {directory} after {timeout}s")
        time.sleep(0.05)


def main():
    fstrail, backend = sys.argv[1], sys.argv[2]
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory(prefix="fstrail-agent-reload-") as base:
        for name in ("stays", "removed", "added", "guarded"):
            os.mkdir(f"{base}/{name}")
        os.chmod(f"{base}/guarded", 0o700)
        conf = f"{base}/fstrail.toml"
        log = f"{base}/agent.log"
        with open(conf, "w") as f:
            f.write(config(base, backend, ["stays", "removed"], "0755"))
        agent = subprocess.Popen([fstrail, "agent", "--config", conf], stderr=subprocess.PIPE, text=True)
        try:
            wait_for_log(log, "guarding 1 tree(s)")
            stop = f"{base}/stop-writing"
            writer = subprocess.Popen([sys.executable, "-c", WRITER, f"{base}/stays", stop, "4000"],
                                      stdout=subprocess.PIPE, text=True)
            wait_for_files(f"{base}/stays", 2000)
            open(f"{base}/removed/before", "w").close()
            open(f"{base}/added/before", "w").close()  # not watched yet
            open(f"{base}/guarded/late", "w").close()  # 0644: fine under 0755, not under 0700
            os.chmod(f"{base}/guarded/late", 0o644)
            time.sleep(0.3)
            with open(conf, "w") as f:
                f.write(config(base, backend, ["stays", "added"], "0700"))
            hup_ns = time.time_ns()
            agent.send_signal(signal.SIGHUP)
            wait_for_log(log, "reloaded")
            reloaded_ns = time.time_ns()
            open(f"{base}/added/after", "w").close()
            open(f"{base}/removed/after", "w").close()
            os.chmod(f"{base}/guarded/late", 0o750)
            wait_for_files(f"{base}/stays", len(os.listdir(f"{base}/stays")) + 2000)
            open(stop, "w").close()
            written = int(writer.communicate(timeout=60)[0])
            accepted = "reload:" not in open(log, errors="replace").read()
            # A bad file on SIGHUP: reported with its line, the running configuration kept.
            with open(conf, "a") as f:
                f.write("\n[metrics]\nlisten = \"127.0.0.1:9764\"\nport = 9764\n")
            agent.send_signal(signal.SIGHUP)
            wait_for_log(log, "the configuration in use is kept")
            open(f"{base}/added/after-bad-reload", "w").close()
            time.sleep(0.5)
        finally:
            agent.send_signal(signal.SIGTERM)
            _, err = agent.communicate(timeout=60)
        log_text = open(log, errors="replace").read()
        print(log_text)
        check(agent.returncode == 0, f"SIGTERM: exit status 0 (got {agent.returncode}; stderr {err!r})")
        check(accepted, "the reload was accepted")
        bad_line = len(open(conf).read().splitlines())
        check(f"fstrail.toml:{bad_line}: unknown key 'port' in [metrics]" in log_text,
              f"the bad reload names fstrail.toml:{bad_line}")

        db = sqlite3.connect(f"{base}/events.db")
        rows = db.execute("SELECT kind, CAST(path AS TEXT) FROM fstrail_events").fetchall()
        times = [t for (t,) in db.execute("SELECT time_ns FROM fstrail_events WHERE kind = 'create' AND "
                                          "CAST(path AS TEXT) LIKE ?", (f"{base}/stays/f%",))]
        prefix = f"{base}/stays/"
        creates = {}
        other = 0
        for kind, path in rows:
            if path.startswith(prefix):
                if kind == "create":
                    creates[path] = creates.get(path, 0) + 1
                else:
                    other += 1
        lost = [r for r in rows if r[0] == "lost"]
        print(f"{written} files written, {len(creates)} distinct creates stored, {len(rows)} rows")
        before = sum(1 for t in times if t < hup_ns)
        after = sum(1 for t in times if t > reloaded_ns)
        check(before >= 1500 and after >= 1500,
              f"the writer made {written} files, {before} before the SIGHUP, {after} after the reload")
        missing = [n for n in range(written) if creates.get(f"{prefix}f{n}", 0) == 0]
        doubled = [p for p, c in creates.items() if c > 1]
        extra = [p for p in creates if p[len(prefix) + 1:] not in {str(n) for n in range(written)}]
        check(not missing, f"every create stored (missing: {len(missing)}, first {missing[:5]})")
        check(not doubled, f"no create stored twice (doubled: {len(doubled)}, first {doubled[:5]})")
        check(not extra and other == 0, f"nothing else under the tree that stays ({extra[:5]}, {other} others)")
        check(not lost, f"no loss ({lost[:3]})")
        paths = {p for _, p in rows}
        check(f"{base}/removed/before" in paths, "the removed root's event before the reload is stored")
        check(f"{base}/removed/after" not in paths, "the removed root's event after the reload is not stored")
        check(f"{base}/added/after" in paths, "the added root's event after the reload is stored")
        check(f"{base}/added/before" not in paths, "the added root's event before the reload is not stored")
        check(f"{base}/added/after-bad-reload" in paths, "after the bad reload the configuration in use still runs")

        alerts = subprocess.run([fstrail, "query", "--alerts", "--json", "--db", f"sqlite://{base}/events.db",
                                 "--path", f"{base}/guarded/late"], capture_output=True, text=True, check=True)
        found = [json.loads(line) for line in alerts.stdout.splitlines()]
        check(any(a["alert"] in ("violation", "existing") and a["actual"]["mode"] == "0750" for a in found),
              f"the tightened rule's alert is stored ({found})")
        check(not any(a["actual"]["mode"] == "0644" and a["alert"] == "violation" and a["kind"] == "create"
                      for a in found), "no alert under the old rule for the 0644 create")
        check('"mode":"0750"' in log_text, "the alert is in the log too")
    if failures:
        sys.exit(f"{len(failures)} failure(s)")
    print("all good")


if __name__ == "__main__":
    main()
