#!/usr/bin/env bash
# Checks monitoring as code (k8s/monitoring): the PrometheusRule's groups
# pass `promtool check rules`, every alert's unit tests pass `promtool test
# rules`, the dashboard is valid JSON with unique panel ids, and every
# popbase_* / process_* metric the rules and the dashboard name is one the
# code exports (a typo would be an alert that never fires).
#
# promtool comes from Debian's `prometheus` package, installed here when
# missing. Usage: scripts/alerts-check.sh [python-with-PyYAML]
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-python3}"

if ! command -v promtool >/dev/null 2>&1; then
  echo "alerts-check: installing promtool (Debian package prometheus)" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$python" - "$work" <<'PY'
import json, pathlib, re, sys, yaml
work = pathlib.Path(sys.argv[1])
rule = yaml.safe_load(open("k8s/monitoring/prometheusrule.yaml"))
assert rule["kind"] == "PrometheusRule", rule["kind"]
groups = rule["spec"]["groups"]
yaml.safe_dump({"groups": groups}, open(work / "rules.yaml", "w"), sort_keys=False, allow_unicode=True)

dashboard = json.load(open("k8s/monitoring/dashboards/popbase.json"))
ids = [p["id"] for p in dashboard["panels"]]
assert len(ids) == len(set(ids)), f"dashboard panel ids repeat: {ids}"

exprs = [r["expr"] for g in groups for r in g["rules"]]
exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
named = set()
for expr in exprs:
    for name in re.findall(r"(?<![:\w])((?:popbase|process)_[a-z_]+)", expr):
        named.add(re.sub(r"_(bucket|sum|count)$", "", name))
source = "\n".join(p.read_text() for p in pathlib.Path(".").glob("*/**/src/**/*.rs") if "target" not in p.parts)
missing = sorted(n for n in named if n not in source)
if missing:
    sys.exit(f"alerts-check: rules or dashboard name metrics no code exports: {', '.join(missing)}")
alerts = [r["alert"] for g in groups for r in g["rules"] if "alert" in r]
tests = yaml.safe_load(open("k8s/monitoring/rules-tests.yaml"))
tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"]}
untested = sorted(set(alerts) - tested)
if untested:
    sys.exit(f"alerts-check: alerts without a unit test: {', '.join(untested)}")
print(f"alerts-check: {len(alerts)} alerts, {len(named)} metrics named, all exported and tested")
PY
cp k8s/monitoring/rules-tests.yaml "$work/"
promtool check rules "$work/rules.yaml"
(cd "$work" && promtool test rules rules-tests.yaml)
echo "alerts-check: rules, tests and dashboard pass"
