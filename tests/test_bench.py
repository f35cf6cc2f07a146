"""Every benchmark under bench/ still starts: its imports resolve and `--help` explains it.

The benchmarks are not run by the tests (speed is measured by running them, not by timed tests), so
nothing else notices when a refactor breaks one; a real-size check on a GPU must not be the first
to find out.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SCRIPTS = sorted(p for p in BENCH.glob("*.py") if not p.name.startswith("_"))


def _help(script: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300,
                          env=env, cwd=BENCH)


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess[str]]:
    with ThreadPoolExecutor(max_workers=2) as pool:  # each mostly waits for torch's import
        return dict(zip((s.name for s in SCRIPTS), pool.map(_help, SCRIPTS), strict=True))


def test_there_are_benchmarks() -> None:
    assert {"compressor.py", "monitoring.py", "scale.py", "retrieval.py"} <= {s.name for s in SCRIPTS}


@pytest.mark.parametrize("name", [s.name for s in SCRIPTS])
def test_the_benchmark_starts_and_explains_itself(
    name: str, helps: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    done = helps[name]
    assert done.returncode == 0, f"bench/{name} --help failed:\n{done.stderr[-2000:]}"
    assert done.stdout.startswith("usage:"), done.stdout[:200]


def test_the_gpu_check_runs_its_cpu_paths_in_a_dry_run() -> None:
    """bench/gpu_check.sh --dry-run: the tiny model and the code paths that exist without CUDA, every
    correctness row passing, one table with the card's name."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHON=sys.executable)
    done = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--dry-run"], capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    assert table.splitlines()[1].startswith("CPU (dry run)")
    for check in ("compressor: tiny bf16", "decode: torch conversion on CPU vs PIL", "decode: effect on the tiny model",
                  "compressor (tiny, CPU, sdpa) batch 8", "decode h264", "decode hevc"):
        assert check in table, check
    assert "FAIL" not in table and "error:" not in table


def test_the_asr_bench_builds_whisper_at_its_published_sizes(
    helps: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """bench/text_track.py's real-size Whisper: the architecture of openai/whisper-* (its parameter
    count as Hugging Face lists it, built on the meta device: no weights) and the real vocabulary,
    timestamp tokens where Whisper has them; the bench offers the sizes and the token budget."""
    import torch
    from tempo.models.whisper_tiny import whisper_parts
    from transformers import WhisperForConditionalGeneration

    text = helps["text_track.py"].stdout
    assert "--asr-size" in text and "--tokens-per-30s" in text
    published = {"tiny": 37_760_640, "base": 72_593_920, "small": 241_734_912}
    for size, params in published.items():
        tokenizer, config, generation = whisper_parts(size)
        assert len(tokenizer) == config.vocab_size == 51865 and config.num_mel_bins == 80
        assert tokenizer.convert_tokens_to_ids("<|0.00|>") == generation.no_timestamps_token_id + 1
        assert tokenizer.convert_tokens_to_ids("<|30.00|>") == 51864
        with torch.device("meta"):
            model = WhisperForConditionalGeneration(config)
        assert sum(p.numel() for p in model.parameters()) == params, size
    with pytest.raises(ValueError, match="unknown Whisper size"):
        whisper_parts("huge")
