"""SegmentEmbedder on a tiny random SigLIP written by write_tiny_siglip (offline, no torchvision)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from tempo.models.embedder import EmbedderLoadError, SegmentEmbedder, write_tiny_siglip


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> SegmentEmbedder:
    return SegmentEmbedder.from_pretrained(write_tiny_siglip(tmp_path_factory.mktemp("siglip") / "tiny"))


def _segment(seed: int, t: int = 8, h: int = 64, w: int = 96) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, h, w, 3), dtype=np.uint8)


def test_tiny_checkpoint_has_the_files_a_siglip_directory_has(tmp_path: Path) -> None:
    path = write_tiny_siglip(tmp_path / "tiny")
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"} <= names


def test_segment_embeddings_are_unit_vectors_of_the_model_dim(embedder: SegmentEmbedder) -> None:
    out = embedder.embed_segments([_segment(0), _segment(1), _segment(2, t=1, h=48, w=64)])
    assert out.shape == (3, embedder.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_segment_embedding_is_the_normalised_mean_of_its_frames(embedder: SegmentEmbedder) -> None:
    frames = _segment(3)
    per_frame = embedder.embed_frames(frames)
    mean = per_frame.mean(0)
    np.testing.assert_allclose(embedder.embed_segments([frames])[0], mean / np.linalg.norm(mean), atol=1e-5)


def test_a_segment_embeds_the_same_alone_or_in_a_batch(embedder: SegmentEmbedder) -> None:
    batch = embedder.embed_segments([_segment(4), _segment(5)])
    np.testing.assert_allclose(embedder.embed_segments([_segment(5)])[0], batch[1], atol=1e-5)


def test_text_embedding_is_a_deterministic_unit_vector(embedder: SegmentEmbedder) -> None:
    a = embedder.embed_text("a person climbs the fence")
    assert a.shape == (embedder.dim,)
    np.testing.assert_allclose(np.linalg.norm(a), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(a, embedder.embed_text("a person climbs the fence"))
    assert not np.allclose(a, embedder.embed_text("a red car leaves"))


def test_same_seed_writes_the_same_model(tmp_path: Path) -> None:
    a = SegmentEmbedder.from_pretrained(write_tiny_siglip(tmp_path / "a", seed=1))
    b = SegmentEmbedder.from_pretrained(write_tiny_siglip(tmp_path / "b", seed=1))
    np.testing.assert_array_equal(a.embed_segments([_segment(6)]), b.embed_segments([_segment(6)]))


def test_embedder_needs_no_torchvision(embedder: SegmentEmbedder) -> None:
    # Pillow is a dependency of Tempo (the release's frame resize), and transformers imports it whenever
    # it is installed; torchvision is not, and the embedder must not need it.
    embedder.embed_segments([_segment(7)])
    embedder.embed_text("dog")
    assert "torchvision" not in sys.modules


def test_missing_directory_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(EmbedderLoadError, match="no SigLIP checkpoint at"):
        SegmentEmbedder.from_pretrained(tmp_path / "nothing")


def test_a_sentencepiece_tokenizer_as_googles_checkpoints_ship_loads(tmp_path: Path) -> None:
    """Google's SigLIP directories carry spiece.model (SiglipTokenizer), not tokenizer.json."""
    import json

    spm = pytest.importorskip("sentencepiece")
    path = write_tiny_siglip(tmp_path / "sp")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a person climbs the fence\nthe red car leaves the street\nwhat happens at the gate\n" * 50)
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(path / "spiece"), vocab_size=30, model_type="unigram",
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2,
    )
    (path / "tokenizer.json").unlink()
    (path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "SiglipTokenizer", "eos_token": "</s>", "pad_token": "</s>",
                    "unk_token": "<unk>", "model_max_length": 16})
    )
    embedder = SegmentEmbedder.from_pretrained(path)
    assert type(embedder.tokenizer).__name__ == "SiglipTokenizer"
    vector = embedder.embed_text("a person climbs the fence")
    assert vector.shape == (embedder.dim,)
    np.testing.assert_allclose(np.linalg.norm(vector), 1.0, rtol=1e-5)
