#!/bin/bash
# Installs what fstrail needs to build, test and benchmark, from Debian's packages.
# Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(
  # build
  build-essential cmake pkg-config clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev libtomlplusplus-dev libfmt-dev libsqlite3-dev libpq-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # the agent's /metrics: text format (prometheus-cpp), HTTP server (cpp-httplib); promtool checks it
  prometheus-cpp-dev libcpp-httplib-dev prometheus curl
  # least privilege after start-up (src/harden): capabilities and the seccomp allow-list
  libcap-dev libseccomp-dev
  # fstrail run: git's ignore rules
  libgit2-dev
  # fuzzing: libFuzzer and the sanitizer runtimes of clang 14 (fuzz/, scripts/run-fuzz.sh)
  libclang-rt-14-dev
  # tests: other users, the VM tier (QEMU and a stock Debian kernel)
  python3 util-linux passwd qemu-system-x86 qemu-system-data busybox-static cpio xz-utils zstd debian-archive-keyring
  # the Debian package (make deb) and the VM test that installs it in a systemd guest
  debhelper lintian mmdebstrap e2fsprogs
  # tests: the real-workload suite (tests/workloads)
  git rsync attr acl tar
  # benchmarks: the peers (entr, fswatch: fstrail run's latency benchmark too)
  inotify-tools fatrace auditd bpftrace fswatch entr
  # benchmarks: Watchman behind git's fsmonitor-watchman hook (bench/fsmonitor_git_status.py)
  watchman
  # store tests and benchmarks: a private PostgreSQL 15 server (initdb/pg_ctl)
  postgresql-15
)

missing=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${packages[@]}" 2>&1 |
  awk '/no packages found/ {print $NF; next} $2 != "ii" {print $1}' || true)
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "fstrail: missing packages:" $missing >&2
  echo "fstrail: run as root (or: sudo apt-get install $(echo $missing))" >&2
  exit 1
fi
echo "fstrail: installing" $missing >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
