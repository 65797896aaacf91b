#!/bin/bash
# Builds fstrail_VERSION_amd64.deb with Debian's tools (dpkg-buildpackage, debhelper) from a
# clean copy of the committed and working-tree sources in BUILD/deb/, so that the source tree
# stays untouched, then checks it with lintian. The .deb lands in BUILD/ (default build/).
#   scripts/build-deb.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(realpath -m "${1:-build}")
version=$(sed -n 's/^project(fstrail VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
changelog=$(sed -n '1s/^fstrail (\([^)]*\)).*/\1/p' packaging/debian/changelog)
if [ "$version" != "$changelog" ]; then
	echo "fstrail deb: CMakeLists.txt says $version, packaging/debian/changelog says $changelog: add a changelog entry" >&2
	exit 1
fi
for tool in dpkg-buildpackage dh lintian; do
	command -v "$tool" >/dev/null || { echo "fstrail deb: $tool is missing: run scripts/install-deps.sh as root" >&2; exit 1; }
done

src=$BUILD/deb/fstrail-$version
rm -rf "$BUILD/deb" && mkdir -p "$src"
# Every file git knows in the working tree (committed or not), nothing it ignores (build*/).
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents -P {} "$src/" 2>/dev/null ||
	{ echo "fstrail deb: copying the sources failed" >&2; exit 1; }
cp -r packaging/debian "$src/debian"
cp packaging/systemd/fstrail.service "$src/debian/fstrail.service"

echo "fstrail deb: building fstrail $version in $src" >&2
# ccache when present (same paths from one build to the next, so later builds hit).
launcher=()
command -v ccache >/dev/null &&
	launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
(cd "$src" && FSTRAIL_CMAKE_ARGS="${launcher[*]}" CCACHE_BASEDIR="$src" \
	dpkg-buildpackage -b -us -uc -j"${JOBS:-2}" >"$BUILD/deb/build.log" 2>&1) || {
	tail -30 "$BUILD/deb/build.log" >&2
	echo "fstrail deb: dpkg-buildpackage failed; the whole log: $BUILD/deb/build.log" >&2
	exit 1
}
deb=$BUILD/deb/fstrail_${version}_amd64.deb
mv "$deb" "$BUILD/"
deb=$BUILD/fstrail_${version}_amd64.deb

echo "fstrail deb: lintian $deb" >&2
lintian --info --display-info "$deb" | tee "$BUILD/deb/lintian.txt" >&2 || true
if grep -q '^E: ' "$BUILD/deb/lintian.txt"; then
	echo "fstrail deb: lintian reports errors" >&2
	exit 1
fi
echo "fstrail deb: $deb (lintian: $(grep -c '^E: ' "$BUILD/deb/lintian.txt") errors, $(grep -c '^W: ' "$BUILD/deb/lintian.txt") warnings)"
