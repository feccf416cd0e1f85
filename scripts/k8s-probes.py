"""Checks a rendered overlay (kubectl kustomize output) for what the kubelet
and the mesh need, so a manifest change cannot leave pods that never become
Ready or roles that talk in plaintext:

- every probe is a gRPC probe on the process's plaintext health port
  (listen.health in the popbase-config ConfigMap, or POPBASE_LISTEN_HEALTH),
  which the container exposes and which is none of the role ports (those
  are mTLS and refuse a probe without a client certificate); the console,
  which serves no gRPC, is probed by TCP on its exposed HTTPS port (a probe
  needs no client certificate there: operators' certificates are optional);
- with --mesh: every `serve --role X` container and the backup job carry
  POPBASE_MESH_CA/CERT/KEY pointing into a mounted Secret mesh-<identity>,
  and a cert-manager Certificate of that Secret names <identity>.roles.popbase.

The end-to-end tests (services/popbase/tests/mesh.rs) start the binary the
same way and show the health port answers without a certificate while the
role ports refuse one.

Usage: python3 k8s-probes.py RENDERED.yaml [--mesh]
"""

import sys
import tomllib

import yaml

MESH_ENV = ("POPBASE_MESH_CA", "POPBASE_MESH_CERT", "POPBASE_MESH_KEY")


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def pod_specs(docs):
    for doc in docs:
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "StatefulSet"):
            yield doc, spec["template"]["spec"]
        elif doc["kind"] == "CronJob":
            yield doc, spec["jobTemplate"]["spec"]["template"]["spec"]


def identity_of(container):
    """The mesh identity a container serves or calls as: its `serve --role X`
    (or --role=X; `serve` alone is all-in-one), or the backup job."""
    args = container.get("args", [])
    if "serve" in args:
        for i, arg in enumerate(args):
            if arg == "--role" and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith("--role="):
                return arg.split("=", 1)[1]
        return "all"
    if container.get("name") == "backup":
        return "backup"
    return None


def check(path, mesh):
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("popbase-config"))
    listen = tomllib.loads(config["data"]["popbase.toml"])["listen"]
    role_ports = {port_of(v) for k, v in listen.items() if k not in ("health", "metrics")}
    certificates = {
        d["spec"]["secretName"]: d["spec"].get("commonName")
        for d in docs
        if d["kind"] == "Certificate"
    }
    problems = []
    probes = 0
    for doc, pod in pod_specs(docs):
        volumes = {v["name"]: v.get("secret", {}).get("secretName") for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            where = f'{doc["kind"]}/{doc["metadata"]["name"]}/{container["name"]}'
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            health = env.get("POPBASE_LISTEN_HEALTH", listen.get("health"))
            exposed = {p["containerPort"] for p in container.get("ports", [])}
            identity = identity_of(container)
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(kind)
                if not probe:
                    continue
                probes += 1
                if identity == "console" and "tcpSocket" in probe:
                    console = port_of(env.get("POPBASE_LISTEN_CONSOLE", listen.get("console", ":8443")))
                    if probe["tcpSocket"]["port"] != console or console not in exposed:
                        problems.append(f"{where}: {kind} is not a TCP probe of the exposed console port ({console})")
                    continue
                if "grpc" not in probe:
                    problems.append(f"{where}: {kind} is not a gRPC probe")
                    continue
                port = probe["grpc"]["port"]
                if health is None or port != port_of(health):
                    problems.append(f"{where}: {kind} targets port {port}, not the health port ({health})")
                if port in role_ports:
                    problems.append(f"{where}: {kind} targets role port {port}, which may demand a client certificate")
                if port not in exposed:
                    problems.append(f"{where}: {kind} targets port {port}, which the container does not expose")
            # The console calls only the gateway's department port: no mesh.
            if not mesh or identity in (None, "all", "console"):
                continue
            missing = [k for k in MESH_ENV if not env.get(k)]
            if missing:
                problems.append(f"{where}: serves or calls the mesh as '{identity}' without {', '.join(missing)}")
                continue
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            folder = env["POPBASE_MESH_CERT"].rsplit("/", 1)[0]
            secret = volumes.get(mounts.get(folder))
            if secret != f"mesh-{identity}":
                problems.append(f"{where}: mesh files come from {secret!r}, not the Secret mesh-{identity}")
            elif certificates.get(secret) != f"{identity}.roles.popbase":
                problems.append(f"{where}: no Certificate issues {secret} as {identity}.roles.popbase")
    if probes == 0:
        problems.append("no probes found")
    return probes, problems


def main():
    path = sys.argv[1]
    mesh = "--mesh" in sys.argv[2:]
    probes, problems = check(path, mesh)
    for problem in problems:
        print(f"k8s-probes: {path}: {problem}", file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"k8s-probes: {path}: {probes} probes on the plaintext health port" + (", mesh certificates mounted" if mesh else ""))


if __name__ == "__main__":
    main()
