"""Metric stage: the average CPU utilisation of the ready pods, in percent of their requests.

Input (stdin): the runtime's metric input; "kubernetesMetrics" holds what the
kubernetesMetricSpecs of config.yaml gathered. Output (stdout): JSON for evaluate.py.
"""
import json
import sys


def main():
    spec = json.load(sys.stdin)
    metrics = spec.get("kubernetesMetrics") or []
    cpu = next((m["resource"] for m in metrics if m["spec"]["type"] == "Resource"
                and m["spec"]["resource"]["name"] == "cpu"), None)
    if cpu is None:
        sys.stderr.write("no cpu metric in kubernetesMetrics\n")
        sys.exit(1)
    samples = cpu["pod_metrics_info"]  # ready pods only: {pod: {"Value": milli-CPU, ...}}
    requests = cpu["requests"]         # {pod: requested milli-CPU}
    usage = sum(s["Value"] for s in samples.values())
    requested = sum(requests[pod] for pod in samples)
    if requested <= 0:
        sys.stderr.write("the ready pods request no CPU\n")
        sys.exit(1)
    json.dump({
        # A ratio of sums, as the HPA computes it, not a mean of ratios.
        "utilization": usage * 100 / requested,
        "readyPods": cpu["ready_pod_count"],
        "currentReplicas": metrics[0]["current_replicas"],
    }, sys.stdout)


if __name__ == "__main__":
    main()
