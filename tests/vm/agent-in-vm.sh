#!/bin/bash
# Runs inside the systemd guest (tools/vmtest.sh with VMTEST_INIT=systemd, from
# tests/vm/agent-vm-test.sh): the operator's path with the Debian package, step by step.
#   agent-in-vm.sh DEB
# 1. install the .deb: nothing enabled or started, files and modes as documented;
# 2. systemd-analyze security fstrail.service (printed; exposure at most 3.5);
# 3. the unit's sandbox with today's `fstrail guard` in place of the agent (a drop-in): on
#    bpf-lsm, bpf-tracepoint and fanotify (bpf-fentry needs what bpf-lsm needs), violations in
#    /srv, /home and /tmp are attributed and remediated, a set-group-ID directory keeps its bit,
#    and bpf-lsm enforcement denies;
# 4. the agent: start, /healthz, /metrics, a recorded change and a guard alert in the
#    database and the metrics, reload with a changed config, stop;
# 5. purge: what goes and what stays.
# Every step runs and reports; exit status 0 iff all passed.
set -u
deb=$1
failed=()
t0=$SECONDS
step() { echo "== [$((SECONDS - t0)) s] $*"; }
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failed+=("$1"); }
# check NAME CMD...: runs CMD, records NAME as failed if it fails.
check() { local name=$1; shift; if "$@"; then ok "$name"; else fail "$name"; fi; }
# wait_for SECONDS CMD...: polls CMD every 0.5 s until it succeeds or SECONDS have passed.
# Quiet while polling; the last attempt shows its output (the reason it failed).
wait_for() {
	local end=$((SECONDS + $1)); shift
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $end ]; then "$@"; return; fi
		sleep 0.5
	done
}
# The journal of the unit's current (or last) run only.
journal() { journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$(systemctl show -p InvocationID --value fstrail)"; }
guard_started() { journal | grep -q "fstrail: guarding"; }
remediated() { [ "$(stat -c %a:%U "$1")" = 750:nobody ]; }
# A violation alert for PATH whose actor's exe is perl (kernel or /proc attribution). The actor
# is perl, which stays alive for 3 s after its chmod and chown: fanotify reads the actor from
# /proc, and a chmod(1) that has already exited would leave exe null there, sandbox or not.
alert_attributed() { journal | grep '"alert":"violation"' | grep "\"path\":\"$1\"" | grep -q '"exe":"/usr/bin/perl"'; }
violate() { perl -e 'chmod 0777, $ARGV[0]; chown 0, -1, $ARGV[0]; sleep 3' "$1"; }

step "guest: $(uname -r), $(systemctl --version | head -1), up $(cut -d" " -f1 /proc/uptime) s at the test's start (kernel + systemd under TCG)"

step "1. install $(basename "$deb")"
check install env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$deb"
check "not enabled" test "$(systemctl is-enabled fstrail)" = disabled
check "not started" test "$(systemctl is-active fstrail)" = inactive
check "binary" test -x /usr/bin/fstrail
check "unit" test -f /lib/systemd/system/fstrail.service
check "config is a conffile" sh -c "dpkg-query -W -f='\${Conffiles}' fstrail | grep -q ' /etc/fstrail/fstrail.toml '"
check "/var/lib/fstrail is 0700" test "$(stat -c %a /var/lib/fstrail)" = 700
check "man pages" test -f /usr/share/man/man1/fstrail.1.gz -a -f /usr/share/man/man5/fstrail.toml.5.gz
check "bash completion" test -f /usr/share/bash-completion/completions/fstrail

step "2. systemd-analyze security fstrail.service"
systemd-analyze security --no-pager fstrail.service | tee /tmp/security.txt | grep -v '^✓'
exposure=$(sed -n 's/.*Overall exposure level for fstrail.service: \([0-9.]*\).*/\1/p' /tmp/security.txt)
check "exposure $exposure <= 3.5" awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 3.5) }'

step "3. the unit's sandbox, with fstrail guard in place of the agent"
mkdir -p /srv/app /home/app /tmp/app /srv/enf
for d in /srv/app /home/app /tmp/app /srv/enf; do
	echo data >"$d/f"
	chown -R nobody:nogroup "$d"
	chmod 0750 "$d"
	chmod 0640 "$d/f"
done
rule() { printf '[[guard]]\nname = "%s"\npath = "%s"\nowner = "nobody"\ngroup = "nogroup"\nmode_max = "%s"\nremediate = true\nenforce = %s\n\n' "$@"; }
# A shared tree of set-group-ID directories: remediation must keep the bit (CAP_FSETID, no
# RestrictSUIDSGID).
mkdir -p /srv/shared/d && chown -R nobody:nogroup /srv/shared && chmod 2770 /srv/shared /srv/shared/d
mkdir -p /run/systemd/system/fstrail.service.d
for backend in bpf-lsm bpf-tracepoint fanotify; do
	{ rule srv /srv/app 0750 false; rule home /home/app 0750 false; rule tmp /tmp/app 0750 false
	  rule shared /srv/shared 2770 false; [ $backend = bpf-lsm ] && rule enf /srv/enf 0750 true; } >/etc/fstrail/sandbox.toml
	printf '[Service]\nExecStart=\nExecStart=/usr/bin/fstrail guard --config /etc/fstrail/sandbox.toml --backend %s --json\nExecReload=\nExecReload=/bin/sh -c \x27kill -HUP "$MAINPID"\x27\n' \
		$backend >/run/systemd/system/fstrail.service.d/sandbox.conf
	systemctl daemon-reload
	systemctl start fstrail
	if ! wait_for 60 guard_started; then
		fail "$backend: guard started in the sandbox"
		systemctl status --no-pager fstrail | tail -15
		journal | tail -5
		systemctl stop fstrail; systemctl reset-failed fstrail 2>/dev/null
		continue
	fi
	ok "$backend: guard started in the sandbox"
	for d in /srv/app /home/app /tmp/app; do violate "$d/f" & done
	for d in /srv/app /home/app /tmp/app; do
		check "$backend: $d/f remediated" wait_for 20 remediated "$d/f" ||
			{ echo "$d/f is $(stat -c %a:%U "$d/f")"; journal | grep -F "$d/f" | tail -5; }
		check "$backend: $d/f alert attributed" wait_for 10 alert_attributed "$d/f"
	done
	chmod 2777 /srv/shared/d
	check "$backend: /srv/shared/d put back to 2770, set-group-ID kept" wait_for 20 sh -c '[ "$(stat -c %a /srv/shared/d)" = 2770 ]' ||
		echo "/srv/shared/d is $(stat -c %a /srv/shared/d)"
	wait
	if [ $backend = bpf-lsm ]; then
		check "bpf-lsm: enforce denies nobody's chmod 0777" sh -c \
			'! setpriv --reuid=65534 --regid=65534 --clear-groups chmod 0777 /srv/enf/f 2>/dev/null && [ "$(stat -c %a /srv/enf/f)" = 640 ]'
	fi
	systemctl stop fstrail
	check "$backend: stopped cleanly" test "$(systemctl show -p Result --value fstrail)" = success
	journal | grep '^fstrail:' | tail -3
done
rm -rf /run/systemd/system/fstrail.service.d /etc/fstrail/sandbox.toml
systemctl daemon-reload

step "4. the agent"
mkdir -p /srv/data
cat >/etc/fstrail/fstrail.toml <<'TOML'
[agent]
backend = "auto"
db = "sqlite:///var/lib/fstrail/events.db"
spool = "/var/lib/fstrail/spool"
retention = "90d"
log = "journal"

[[watch]]
path = "/srv/data"

[[guard]]
name = "app"
path = "/srv/app"
owner = "nobody"
group = "nogroup"
mode_max = "0750"
remediate = true

[metrics]
listen = "127.0.0.1:9764"
TOML
check "agent: --check-config" fstrail agent --config /etc/fstrail/fstrail.toml --check-config
agent_wait=60 query_wait=20
# (`fstrail agent --help` is no test: CLI11 prints the main help for an unknown subcommand.)
if ! fstrail --help 2>&1 | grep -Eq '^ +agent( |$)'; then
	echo "FAIL: this fstrail has no \`agent\` command: every agent step below fails (without waiting)"
	agent_wait=1 query_wait=1
fi
systemctl start fstrail
check "agent: active" wait_for $agent_wait sh -c 'systemctl is-active -q fstrail && curl -fsS http://127.0.0.1:9764/healthz >/dev/null'
if ! systemctl is-active -q fstrail; then
	systemctl status --no-pager fstrail | tail -15
fi
curl -fsS http://127.0.0.1:9764/metrics >/tmp/metrics.txt
check "agent: /metrics has fstrail_build_info" grep -q '^fstrail_build_info' /tmp/metrics.txt
echo made-by-test >/srv/data/new.txt
check "agent: the change is in the database" wait_for $query_wait sh -c \
	'fstrail query --db sqlite:///var/lib/fstrail/events.db --path /srv/data/new.txt | grep -q new.txt'
chmod 0777 /srv/app/f
check "agent: the alert is in the database" wait_for $query_wait sh -c \
	'fstrail query --db sqlite:///var/lib/fstrail/events.db --alerts --path /srv/app/ | grep -q /srv/app/f'
check "agent: the alert is in the metrics" wait_for $query_wait sh -c \
	"curl -fsS http://127.0.0.1:9764/metrics | grep -Eq '^fstrail_[a-z_]*alerts[a-z_]*\{[^}]*rule=\"app\"[^}]*\} [1-9]'"
pid=$(systemctl show -p MainPID --value fstrail)
mkdir -p /home/data
sed -i 's|^path = "/srv/data"|path = "/srv/data"\n\n[[watch]]\npath = "/home/data"|' /etc/fstrail/fstrail.toml
check "agent: systemctl reload" systemctl reload fstrail
check "agent: same process after reload" sh -c "[ $pid != 0 ] && [ \"\$(systemctl show -p MainPID --value fstrail)\" = $pid ]"
sleep 2
echo after-reload >/home/data/added.txt
echo after-reload >/srv/data/kept.txt
check "agent: a tree added by reload is recorded" wait_for $query_wait sh -c \
	'fstrail query --db sqlite:///var/lib/fstrail/events.db --path /home/data/added.txt | grep -q added.txt'
check "agent: a tree kept by reload is still recorded" wait_for $query_wait sh -c \
	'fstrail query --db sqlite:///var/lib/fstrail/events.db --path /srv/data/kept.txt | grep -q kept.txt'
systemctl stop fstrail
check "agent: stopped cleanly (SIGTERM drains)" test "$(systemctl show -p Result --value fstrail)" = success
journal | tail -5

step "5. purge"
ls -la /var/lib/fstrail
history=no; [ -e /var/lib/fstrail/events.db ] && history=yes
check "purge" env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q fstrail
check "purge: binary gone" test ! -e /usr/bin/fstrail
check "purge: unit gone" test ! -e /lib/systemd/system/fstrail.service
check "purge: /etc/fstrail gone" test ! -e /etc/fstrail
check "purge: not known to dpkg" sh -c '! dpkg-query -W fstrail 2>/dev/null'
if [ $history = yes ]; then
	check "purge: the history stays" test -s /var/lib/fstrail/events.db
else
	check "purge: /var/lib/fstrail gone (no history was made)" test ! -e /var/lib/fstrail
fi
echo "left behind:"; find /etc/fstrail /var/lib/fstrail /lib/systemd/system/fstrail* /etc/systemd/system -name '*fstrail*' 2>/dev/null

step "done in $((SECONDS - t0)) s"
if [ ${#failed[@]} -gt 0 ]; then
	echo "vm agent: FAILED (${#failed[@]}): $(printf '%s; ' "${failed[@]}")"
	exit 1
fi
echo "vm agent: all passed"
