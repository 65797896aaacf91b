#!/bin/bash
# fstrail in half a minute: watch a directory while root and another user (uid 65534)
# create, write, rename, chmod and chown files in it, then stop with Ctrl-C (SIGINT)
# so the summary prints.   scripts/demo.sh BUILD/fstrail
set -euo pipefail
FSTRAIL=${1:-build/fstrail}
DEMO=$(mktemp -d /tmp/fstrail-demo.XXXXXX)
chmod 1777 "$DEMO"  # the other user writes here too
trap 'rm -rf "$DEMO" "$DEMO.err"' EXIT
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "$1; sleep 0.2"; }

echo "== fstrail watch $DEMO   (auto backend; readable output)"
"$FSTRAIL" watch "$DEMO" 2> >(tee "$DEMO.err" >&2) &
FSTRAIL_PID=$!
for _ in $(seq 100); do grep -q "watching" "$DEMO.err" 2>/dev/null && break; sleep 0.1; done

cd "$DEMO"
echo "hello" >notes.txt                        # root creates and writes
mkdir -p project/src && echo 'int main(){}' >project/src/main.c
mv notes.txt project/README                    # rename
chmod 600 project/README                       # chmod: old and new mode
chown 65534:65534 project/src/main.c           # chown: old and new owner
as_nobody "echo draft >$DEMO/draft.txt"        # another user writes: attributed to uid 65534
as_nobody "mv $DEMO/draft.txt $DEMO/final.txt; chmod 640 $DEMO/final.txt"
rm -r project                                  # deletes, deepest first
cd /
sleep 0.5  # let the last events through

kill -INT "$FSTRAIL_PID"
wait "$FSTRAIL_PID"
