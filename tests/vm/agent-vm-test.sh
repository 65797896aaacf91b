#!/bin/bash
# ctest vm_agent_6.12: the Debian package in a Debian 12 guest booted with systemd as PID 1
# (tools/vmtest.sh, VMTEST_INIT=systemd, Linux 6.12), running tests/vm/agent-in-vm.sh there.
#   agent-vm-test.sh SHARE_DIR BUILD_DIR
# The guest has no network: its root file system is built (and cached) with the .deb's
# Depends already installed. Fails with the reason when the .deb is missing or older than
# the binary (`make deb` builds it; `make test` runs it first).
set -euo pipefail
share=$1
build=$(realpath "$2")
here=$(dirname "$(readlink -f "$0")")
version=$(sed -n 's/^project(fstrail VERSION \([0-9.]*\).*/\1/p' "$here/../../CMakeLists.txt")
deb=$build/fstrail_${version}_amd64.deb
if [ ! -f "$deb" ]; then
	echo "vm agent: $deb is missing: run \`make deb\` (or \`scripts/build-deb.sh $build\`) first" >&2
	exit 1
fi
if [ -e "$build/fstrail" ] && [ "$build/fstrail" -nt "$deb" ]; then
	echo "vm agent: $deb is older than $build/fstrail: run \`make deb\` again" >&2
	exit 1
fi
# Depends: "libc6 (>= 2.34), libbpf1 (>= 1:0.6.0), ..." -> "libc6 libbpf1 ..." (first alternative).
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | grep -v '^$' | sort -u | tr '\n' ' ')
echo "vm agent: $deb, guest packages: $depends"
start=$SECONDS
rc=0
VMTEST_INIT=systemd VMTEST_PACKAGES="$depends" VMTEST_SUITE=bookworm-backports \
	"$here/../../tools/vmtest.sh" "$share" "$here/agent-in-vm.sh" "$deb" || rc=$?
echo "vm agent: exit $rc after $((SECONDS - start)) s"
exit $rc
