"""GPU FAISS selection: a GPU copy only where the installed faiss can use one, else the CPU index."""

from __future__ import annotations

import types
from pathlib import Path

import faiss
import numpy as np
import pytest
from tempo.memory.index import GPU_MIN_VECTORS, SegmentIndex, faiss_gpu_count, use_gpu_faiss

from .test_index import _ingest, _query


def test_faiss_cpu_reports_no_gpu() -> None:
    # This machine has faiss-cpu: no StandardGpuResources, so no GPU path is taken.
    expected = faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
    assert faiss_gpu_count() == expected == 0


def test_a_faiss_without_gpu_symbols_counts_zero_gpus() -> None:
    assert faiss_gpu_count(types.SimpleNamespace(get_num_gpus=lambda: 2)) == 0


def test_a_gpu_build_whose_driver_fails_counts_zero_gpus() -> None:
    def broken() -> int:
        raise RuntimeError("CUDA driver version is insufficient")

    fake = types.SimpleNamespace(StandardGpuResources=object, index_cpu_to_gpu=None, get_num_gpus=broken)
    assert faiss_gpu_count(fake) == 0
    fake_ok = types.SimpleNamespace(StandardGpuResources=object, index_cpu_to_gpu=None, get_num_gpus=lambda: 1)
    assert faiss_gpu_count(fake_ok) == 1


@pytest.mark.parametrize(
    ("vectors", "filtered", "gpus", "expected"),
    [
        (GPU_MIN_VECTORS, False, 1, True),  # large, unfiltered, a GPU: GPU copy
        (GPU_MIN_VECTORS - 1, False, 1, False),  # small: the CPU scan is cheaper than a copy
        (GPU_MIN_VECTORS * 10, True, 1, False),  # an id filter: GPU indexes take no IDSelector
        (GPU_MIN_VECTORS * 10, False, 0, False),  # no GPU: CPU
    ],
)
def test_gpu_is_used_only_for_large_unfiltered_searches_with_a_gpu(
    vectors: int, filtered: bool, gpus: int, expected: bool
) -> None:
    assert use_gpu_faiss(vectors, filtered=filtered, gpus=gpus) is expected


def test_search_above_the_gpu_threshold_falls_back_to_the_cpu_index(store, records, tmp_path: Path) -> None:
    _ingest(store, records, "cam", 40)
    index = SegmentIndex.open(store, home=tmp_path, gpu_min_vectors=10)
    hits = index.search(_query(records, "cam", 17), k=3)
    assert hits[0].index == 17 and index._gpu_resources is None
    assert all(st.gpu is None for st in index._streams.values())
    assert np.isfinite([h.score for h in hits]).all()
