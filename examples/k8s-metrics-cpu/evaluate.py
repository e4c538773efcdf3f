"""Evaluate stage: the replica count that brings CPU utilisation to the target.

Input (stdin): {"metrics": [{"resource": ..., "value": <metric.py's output>}], ...}.
Output (stdout): {"targetReplicas": N}.
"""
import json
import math
import sys

TARGET_UTILIZATION = 50  # percent of the pods' CPU requests
TOLERANCE = 0.1          # no change while within 10% of the target, as the HPA


def main():
    spec = json.load(sys.stdin)
    value = json.loads(spec["metrics"][0]["value"])
    current = value["currentReplicas"]
    ratio = value["utilization"] / TARGET_UTILIZATION
    if abs(ratio - 1) <= TOLERANCE:
        target = current
    else:
        target = math.ceil(value["readyPods"] * ratio)
    json.dump({"targetReplicas": target}, sys.stdout)


if __name__ == "__main__":
    main()
