"""Segment embeddings for retrieval: SigLIP (transformers `SiglipModel`) image and text towers.

A segment's embedding is the mean of its frames' image embeddings, L2-normalised; a query's is the
text tower's embedding, L2-normalised; their inner product ranks segments for a question (DESIGN §3).

Frames are preprocessed by transformers' SigLIP image processor with the checkpoint's
`preprocessor_config.json` (Pillow bicubic resize to `size`, rescale, normalise) — its Pillow backend
`SiglipImageProcessorPil`, since the default `SiglipImageProcessor` of transformers 5 needs
torchvision, which Tempo does not install. Text is padded
to the text tower's `max_position_embeddings` ("max_length" padding, as SigLIP was trained).
The tokenizer is loaded with AutoTokenizer: a `tokenizer.json` (the tiny checkpoint writes one with
the `tokenizers` library) or, for Google's checkpoints, `spiece.model` (needs `sentencepiece` and
`protobuf`, both dependencies).
Nothing is ever downloaded: `from_pretrained` takes a local directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tempo.models.errors import EmbedderLoadError
from transformers import AutoTokenizer, SiglipConfig, SiglipModel
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil


class SegmentEmbedder:
    """SigLIP image/text embeddings of segments and queries, (E,) float32 unit vectors."""

    def __init__(
        self,
        model: SiglipModel,
        tokenizer: object,
        image_processor: SiglipImageProcessorPil,
        *,
        name: str = "siglip",
        device: str | torch.device = "cpu",
        batch_frames: int = 64,
    ) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.name = name
        self.device = torch.device(device)
        self.batch_frames = batch_frames
        self.image_processor = image_processor
        self.text_length = int(model.config.text_config.max_position_embeddings)

    @property
    def dim(self) -> int:
        """E: the embedding dimension (768 for siglip-base)."""
        return int(self.model.config.vision_config.hidden_size)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
    ) -> SegmentEmbedder:
        """Load a SigLIP directory (config, safetensors, tokenizer, preprocessor_config.json)."""
        path = Path(directory)
        if not (path / "config.json").is_file():
            raise EmbedderLoadError(f"no SigLIP checkpoint at {path} (config.json missing)")
        try:
            config = SiglipConfig.from_pretrained(path, local_files_only=True)
            model = SiglipModel.from_pretrained(path, config=config, local_files_only=True, dtype=dtype)
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError, ImportError) as exc:
            reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise EmbedderLoadError(f"cannot load the SigLIP embedder from {path}: {reason}") from exc
        try:
            # Without preprocessor_config.json: SigLIP's defaults (224², bicubic, mean = std = 0.5).
            if (path / "preprocessor_config.json").is_file():
                image_processor = SiglipImageProcessorPil.from_pretrained(path, local_files_only=True)
            else:
                image_processor = SiglipImageProcessorPil(image_mean=[0.5] * 3, image_std=[0.5] * 3)
        except (OSError, ValueError) as exc:
            raise EmbedderLoadError(f"cannot read the SigLIP preprocessor config in {path}: {exc}") from exc
        return cls(model, tokenizer, image_processor, name=path.name, device=device)

    def _pixels(self, frames: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 → (N, 3, h, w) normalised float pixels at the model's input size."""
        out = self.image_processor(images=list(frames), return_tensors="pt")["pixel_values"]
        return out.to(self.device)

    @torch.inference_mode()
    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 → (N, E) float32 unit vectors, one per frame."""
        out = []
        param = next(self.model.parameters())
        for i in range(0, len(frames), self.batch_frames):
            pixels = self._pixels(frames[i : i + self.batch_frames]).to(param.dtype)
            pooled = self.model.get_image_features(pixel_values=pixels).pooler_output  # (n, E)
            out.append(F.normalize(pooled.float(), dim=-1).cpu())
        return torch.cat(out).numpy()

    def embed_segments(self, segments: Sequence[np.ndarray]) -> np.ndarray:
        """List of (T, H, W, 3) uint8 frame arrays → (n, E) float32: mean of frame embeddings, normalised.

        Frames of all segments go through the image tower together (batched by `batch_frames`).
        """
        if not segments:
            return np.zeros((0, self.dim), np.float32)
        sizes = [len(s) for s in segments]
        # Segments may differ in frame size (a stream's resolution can change): batch per shape.
        flat: list[np.ndarray] = [None] * sum(sizes)  # type: ignore[list-item]
        offsets = np.cumsum([0, *sizes])
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for s, frames in enumerate(segments):
            for t in range(len(frames)):
                by_shape.setdefault(frames.shape[1:], []).append(int(offsets[s]) + t)
        for positions in by_shape.values():
            stacked = np.stack([_frame(segments, offsets, p) for p in positions])
            for p, emb in zip(positions, self.embed_frames(stacked), strict=True):
                flat[p] = emb
        per_frame = np.stack(flat)  # (ΣT, E)
        means = np.stack([per_frame[offsets[i] : offsets[i + 1]].mean(0) for i in range(len(segments))])
        return (means / np.linalg.norm(means, axis=1, keepdims=True).clip(1e-12)).astype(np.float32)

    @torch.inference_mode()
    def embed_text(self, text: str) -> np.ndarray:
        """A query → (E,) float32 unit vector."""
        enc = self.tokenizer(
            [text], padding="max_length", truncation=True, max_length=self.text_length, return_tensors="pt"
        )
        pooled = self.model.get_text_features(input_ids=enc["input_ids"].to(self.device)).pooler_output
        return F.normalize(pooled.float(), dim=-1)[0].cpu().numpy()


def _frame(segments: Sequence[np.ndarray], offsets: np.ndarray, position: int) -> np.ndarray:
    s = int(np.searchsorted(offsets, position, side="right") - 1)
    return segments[s][position - offsets[s]]


_TINY_WORDS = (
    "a", "an", "the", "of", "in", "on", "at", "to", "and", "or", "with", "is", "are", "was",
    "person", "people", "man", "woman", "child", "car", "truck", "bus", "bike", "dog", "cat",
    "bird", "red", "blue", "green", "white", "black", "yellow", "door", "fence", "gate", "street",
    "road", "room", "kitchen", "camera", "walks", "runs", "enters", "leaves", "climbs", "sits",
    "stands", "opens", "closes", "holds", "picks", "drops", "left", "right", "front", "back",
    "what", "when", "where", "who", "how", "many", "does", "did", "happen", "seconds", "video",
    "scene", "moving", "object", "light", "dark",
)


def write_tiny_siglip(directory: str | Path, *, seed: int = 0) -> Path:
    """Write a tiny random SigLIP checkpoint loadable by `SegmentEmbedder.from_pretrained`.

    config.json + model.safetensors (random weights from `seed`), tokenizer.json (a word-level
    tokenizer built with the `tokenizers` library: lower-cased words, `</s>` appended and used for
    padding, as SigLIP does), tokenizer_config.json and preprocessor_config.json. E = 32.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    specials = ["<pad>", "</s>", "<unk>"]
    vocab = {tok: i for i, tok in enumerate([*specials, *_TINY_WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="</s>", unk_token="<unk>", model_max_length=16
    )
    fast.save_pretrained(path)

    config = SiglipConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
            "pad_token_id": 1,
            "bos_token_id": 1,
            "eos_token_id": 1,
            "projection_size": 32,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
    )
    torch.manual_seed(seed)
    model = SiglipModel(config)
    model.save_pretrained(path, safe_serialization=True)
    preprocess = {
        "image_processor_type": "SiglipImageProcessor",
        "do_resize": True,
        "size": {"height": 32, "width": 32},
        "resample": 3,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    (path / "preprocessor_config.json").write_text(json.dumps(preprocess, indent=1))
    return path
