"""The union of HdrHistogram interval logs, read by an independent implementation (the
`hdrhistogram` package of PyPI, HdrHistogram_py): every interval of TAG in every FILE added into
one histogram. Prints {"count": n, "p50_us": .., "p99_us": .., "max_us": ..} as JSON.

usage: python3 hlog_union.py TAG FILE...
"""

import json
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader


def main() -> None:
    tag, files = sys.argv[1], sys.argv[2:]
    union = HdrHistogram(1, 3_600_000_000, 3)
    intervals = 0
    for name in files:
        reader = HistogramLogReader(name, HdrHistogram(1, 3_600_000_000, 3))
        while True:
            h = reader.get_next_interval_histogram()
            if h is None:
                break
            if h.get_tag() == tag:
                union.add(h)
                intervals += 1
        reader.close()
    print(
        json.dumps(
            {
                "count": union.get_total_count(),
                "intervals": intervals,
                "p50_us": union.get_value_at_percentile(50),
                "p99_us": union.get_value_at_percentile(99),
                "max_us": union.get_max_value(),
            }
        )
    )


if __name__ == "__main__":
    main()
