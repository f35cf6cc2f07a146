"""A committer process for the outbox tests: commits segments 0..n-1 of stream `cam` with their rule
commits (the real RuleMonitor and store), prints "committed", then waits for a line on stdin before
relaying their alert events (printing "relayed"): a kill -9 while it waits is a committer that died
between its commit and its relay.

usage: python alert_committer.py URL SCORE [SCORE ...] — one score per segment for the stream's one rule.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from records_factory import FILE_SOURCE, SETTINGS, make_record
from tempo.agent.monitoring.monitor import RuleMonitor
from tempo.memory import RedisMemoryStore, connect
from tempo.memory.alerts import AlertStore
from tempo.streaming.segment import Segment


def main() -> int:
    url, scores = sys.argv[1], [float(x) for x in sys.argv[2:]]
    store = RedisMemoryStore(connect(url))
    store.create_stream("cam", FILE_SOURCE, SETTINGS)
    records = [make_record("cam", i) for i in range(len(scores))]
    segments = [
        Segment("cam", r.index, r.start, r.end, r.timestamps, np.zeros((8, 16, 16, 3), np.uint8), FILE_SOURCE, 2.0)
        for r in records
    ]
    monitor = RuleMonitor(AlertStore.of(store), "cam")
    monitor.queries()
    then = monitor.observe(segments, np.array(scores, np.float32)[:, None])  # (n, 1)
    store.put_segments(records, then=then)
    print("committed", flush=True)
    sys.stdin.readline()
    monitor.committed(records)
    print("relayed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
