"""Parse an OpenMetrics exposition (stdin) with the Prometheus project's own Python parser and
print every sample as JSON lines: {"name", "labels", "value"}. Exit 1 if it does not parse."""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = sys.stdin.read()
for family in text_string_to_metric_families(text):
    for s in family.samples:
        print(json.dumps({"family": family.name, "type": family.type, "name": s.name,
                          "labels": s.labels, "value": s.value}))
