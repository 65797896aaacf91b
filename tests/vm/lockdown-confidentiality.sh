#!/bin/bash
# Runs inside a VM booted with lockdown=confidentiality (tests/CMakeLists.txt,
# vm_linux_6.12_confidentiality): what fstrail can use there, and that `auto` picks it and
# reports right. Measured on 6.12 (docs/backends.md): tracing is disabled from boot
# (tracefs empty: no tracepoint can be attached) and bpf_probe_read_kernel is refused,
# which every program of bpf-lsm and bpf-fentry calls: fanotify is the best that works.
#   lockdown-confidentiality.sh BUILD_DIR
set -u
fstrail=$1/fstrail
failed=0
fail() { echo "FAIL: $*"; failed=1; }
mode=$(cat /sys/kernel/security/lockdown)
echo "vm: kernel $(uname -r), lockdown: $mode"
[[ $mode == *"[confidentiality]"* ]] || { echo "FAIL: the kernel did not take lockdown=confidentiality"; exit 1; }

doctor=$("$fstrail" doctor)
echo "$doctor"
line() { grep -E "^  $1 " <<<"$doctor"; }
for b in bpf-lsm bpf-fentry; do
	line "$b" | grep -q ' no .*bpf_probe_read_kernel.*lockdown=confidentiality refuses it' ||
		fail "doctor does not say that $b's kernel reads are refused: $(line "$b")"
done
line bpf-tracepoint | grep -q ' no .*tracefs is empty: with lockdown=confidentiality' ||
	fail "doctor does not say why bpf-tracepoint cannot attach: $(line bpf-tracepoint)"
grep -q '^--backend auto would use: fanotify$' <<<"$doctor" || fail "doctor's auto is not fanotify"

dir=$(mktemp -d /tmp/fstrail-conf.XXXXXX)
out=$dir.json err=$dir.err
"$fstrail" watch --json "$dir" >"$out" 2>"$err" &
pid=$!
for _ in $(seq 100); do grep -q 'watching' "$err" 2>/dev/null && break; sleep 0.2; done
sh -c "echo one > '$dir/a'; mkdir '$dir/sub'; mv '$dir/a' '$dir/sub/b'; chmod 600 '$dir/sub/b'; rm '$dir/sub/b'"
# A writer that lives on after its write: its actor can be read and must be right (the
# short-lived ones above may be gone first: their fields are then null, never guessed).
/usr/bin/python3 -c "open('$dir/long', 'w').write('x'); import time; time.sleep(3)"
sleep 2
kill -INT "$pid"
wait "$pid" || fail "watch exited with $?"
cat "$err"
grep -q 'auto chose fanotify' "$err" || fail "auto did not choose fanotify"
/usr/bin/python3 - "$dir" "$out" <<'PY' || failed=1
import json, sys
root, out = sys.argv[1], sys.argv[2]
events = [json.loads(l) for l in open(out) if l.strip()]
got = [(e["kind"], e["path"], e.get("old_path")) for e in events]
want = [("create", f"{root}/a", None), ("modify", f"{root}/a", None), ("mkdir", f"{root}/sub", None),
        ("rename", f"{root}/sub/b", f"{root}/a"), ("chmod", f"{root}/sub/b", None),
        ("delete", f"{root}/sub/b", None), ("create", f"{root}/long", None), ("modify", f"{root}/long", None)]
ok = True
for w in want:
    if w not in got:
        print(f"FAIL: missing {w}; got {got}"); ok = False
comms = {"sh", "mkdir", "mv", "chmod", "rm", "python3"}
for e in events:
    if e["backend"] != "fanotify":
        print(f"FAIL: backend {e['backend']}"); ok = False
    # Wrong is a non-null field that differs from what the script knows.
    if not e.get("pid") or e.get("uid") not in (0, None) or e.get("comm") not in comms | {None}:
        print(f"FAIL: wrong actor: {e}"); ok = False
    if e["path"] == f"{root}/long" and (e.get("uid") != 0 or e.get("comm") != "python3"):
        print(f"FAIL: the long-lived writer's actor is not known: {e}"); ok = False
known = sum(1 for e in events if e.get("uid") is not None)
print(f"{len(events)} events, {len(want)} expected ones found, actor known for {known}")
sys.exit(0 if ok else 1)
PY
[ $failed = 0 ] && echo "vm: confidentiality checks passed" || echo "vm: confidentiality checks FAILED"
exit $failed
