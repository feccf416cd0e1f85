"""What a Prometheus server would see, from outside: callers send requests to
paths of their own making (one crafted to inject labels), then the metrics
endpoint is scraped and parsed with prometheus_client's text parser, the
parser Prometheus-compatible tooling uses. Every sample must parse, name a
served method or "unknown", and junk paths must not add series.

    python metrics_check.py --gateway 127.0.0.1:50051 --metrics 127.0.0.1:9090
"""

import argparse
import sys
import urllib.request

import grpc
from prometheus_client.parser import text_string_to_metric_families

HOSTILE = ['/popbase.x",role="gateway",code="0', "/popbase.ops.v1.Ops/Nope", "/a/b/c", "/\u00e9\u00e9"]


def series(metrics):
    text = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=10).read().decode()
    families = list(text_string_to_metric_families(text))  # raises on a malformed line
    return [s for f in families if f.name == "popbase_grpc_requests" for s in f.samples if s.name.endswith("_total")]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--metrics", required=True)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()

    with grpc.insecure_channel(args.gateway) as channel:
        for round in range(args.rounds):
            for path in HOSTILE:
                try:
                    channel.unary_unary(path + (str(round) if round % 2 else ""))(b"", timeout=5)
                except grpc.RpcError:
                    pass
    samples = series(args.metrics)
    methods = {s.labels["method"] for s in samples}
    assert all(m == "unknown" or m.startswith("/") and '"' not in m for m in methods), methods
    assert not any("popbase.x" in m for m in methods), methods
    unknown = [s for s in samples if s.labels["method"] == "unknown"]
    assert unknown and sum(s.value for s in unknown) >= args.rounds * len(HOSTILE), unknown
    before = len(samples)
    with grpc.insecure_channel(args.gateway) as channel:
        for i in range(200):
            try:
                channel.unary_unary(f"/junk.{i}/Method{i}")(b"", timeout=5)
            except grpc.RpcError:
                pass
    after = len(series(args.metrics))
    assert after == before, f"200 junk paths added {after - before} series"
    print(f"metrics check passed: {len(samples)} request series parse, hostile paths counted as unknown, none added")
    return 0


if __name__ == "__main__":
    sys.exit(main())
