"""A writer process for the crash tests: commits synthetic segments, printing each acknowledged index.

usage: python crash_writer.py URL STREAM TOTAL [BATCH] — resumes at the stream's next index.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from records_factory import FILE_SOURCE, SETTINGS, make_record
from tempo.memory import MemoryUnavailableError, RedisMemoryStore


def main() -> int:
    url, stream, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    batch = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    store = RedisMemoryStore.connect(url)
    store.create_stream(stream, FILE_SOURCE, SETTINGS)
    i = store.next_index(stream)
    try:
        while i < total:
            records = [make_record(stream, j) for j in range(i, min(i + batch, total))]
            for result in store.put_segments(records):
                print(result.index, flush=True)  # acknowledged: Redis replied after the AOF fsync
            i += len(records)
    except MemoryUnavailableError:
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
