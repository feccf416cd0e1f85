#!/usr/bin/env bash
# The console in a real browser: installs Debian's chromium, chromium-driver
# and a CJK font when missing (as root, or with sudo), Selenium, grpcio and pyarrow in
# a cached venv, starts `popbase demo` on ephemeral ports and runs
# services/console/tests/browser/console_browser.py against it.
# Screenshots: $POPBASE_SCREENSHOTS (default <target>/browser-screenshots).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
popbase="${POPBASE_BIN:-$target/debug/popbase}"
shots="${POPBASE_SCREENSHOTS:-$target/browser-screenshots}"

# chromium, its driver, and a CJK font (the pages are Chinese).
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ] || ! [ -d /usr/share/fonts/truetype/wqy ]; then
  echo "browser-test: installing chromium, chromium-driver and fonts-wqy-zenhei" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-wqy-zenhei >/dev/null
fi
venv="${POPBASE_CACHE_DIR:-$HOME/.cache/popbase}/venv-browser"
# pyarrow: the test finds a demo family through the persons export, as the examples do.
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import selenium, grpc_tools, pyarrow.flight" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check selenium==4.51.0 grpcio==1.76.0 grpcio-tools==1.76.0 pyarrow==26.0.1
fi

work="$(mktemp -d)"
out="$work/demo.out"
"$popbase" --data "$work/data" demo --persons 2000 \
  --household-addr 127.0.0.1:0 --residence-addr 127.0.0.1:0 --feeds-addr 127.0.0.1:0 \
  --gateway-addr 127.0.0.1:0 --ledger-addr 127.0.0.1:0 --metrics-addr 127.0.0.1:0 --console-addr 127.0.0.1:0 \
  >"$out" 2>"$work/demo.err" &
demo=$!
trap 'kill $demo 2>/dev/null || true; wait $demo 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do
  grep -q '^popbase ready' "$out" && break
  kill -0 $demo 2>/dev/null || { cat "$work/demo.err" >&2; exit 1; }
  sleep 0.2
done
addr() { sed -n "s/^popbase serving role=$1 addr=//p" "$out"; }

stubs="$work/stubs"
mkdir -p "$stubs"
(cd "$root/proto" && find popbase -name '*.proto' -print0 | xargs -0 "$venv/bin/python" -m grpc_tools.protoc -I . --python_out="$stubs" --grpc_python_out="$stubs")
find "$stubs/popbase" -type d -exec touch {}/__init__.py \;

rm -rf "$shots"
PYTHONPATH="$stubs" "$venv/bin/python" "$root/services/console/tests/browser/console_browser.py" \
  --console "https://$(addr console)" --gateway "$(addr gateway)" --popbase "$popbase" --data "$work/data" --shots "$shots"
# The demo's log (what the leak scan reads in CI) must not hold the ID number the test used.
if grep -q '370302198603144' "$work/demo.err" "$out"; then
  echo "browser-test: the server log holds the test resident's ID number" >&2; exit 1
fi
# And no ID number of any pattern (the leak scan CI runs on every log).
"$root/scripts/leak-scan.py" "$work/demo.err" "$out"
ls "$shots"
