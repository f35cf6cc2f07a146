"""Every rendition the open-weights family can give a segment costs exactly what transformers' own
Qwen3-VL processor counts for it: the processor (AutoProcessor of the tiny checkpoint, run in
`.venv-serve`, where torchvision imports beside CPU torch; `make serve-venv`) is given each rendition's
frames and times, and the `<|video_pad|>` tokens it writes are compared with `Rendition.tokens`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tempo.models.qwen3vl_family import Qwen3VLFamily
from tempo.models.qwen3vl_tiny import write_tiny_qwen3vl
from tempo.models.renditions import render_clip

from .conftest import make_segment

SERVE_PYTHON = Path(__file__).resolve().parents[2] / ".venv-serve" / "bin" / "python"

PROBE = r"""
import json, sys
import numpy as np
from transformers import AutoProcessor

proc = AutoProcessor.from_pretrained(sys.argv[1], cap_pixels_per_frame=False)
pad = proc.tokenizer.convert_tokens_to_ids("<|video_pad|>")
clips = np.load(sys.argv[2], allow_pickle=False)
out = []
for key in sorted(clips.files, key=int):
    frames = clips[key]
    f = frames.shape[0]
    messages = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What?"}]}]
    text = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    meta = {"fps": 2.0, "frames_indices": list(range(f)), "total_num_frames": f, "duration": f / 2.0}
    enc = proc(text=[text], videos=[frames], video_metadata=[meta], do_resize=False, do_sample_frames=False,
               return_tensors="pt")
    out.append(int((enc["input_ids"] == pad).sum()))
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_qwen3vl(tmp_path_factory.mktemp("qwen") / "tiny", seed=0)


def test_every_rendition_costs_what_the_processor_counts(qwen_dir: Path, tmp_path: Path) -> None:
    if not SERVE_PYTHON.exists():
        pytest.fail("the processor check needs .venv-serve (torchvision beside CPU torch): run `make serve-venv`")
    fam = Qwen3VLFamily.load(qwen_dir, device="cpu")
    clips = {}
    renditions = []
    for i, size in enumerate([(96, 160), (180, 320), (64, 64)]):
        seg = make_segment(i, size=size)
        frames = fam.processor.compressor_frames(seg.frames)
        for rendition in fam.rendition_ladder(frames):
            clip = render_clip(seg.index, frames, seg.timestamps, rendition)
            assert clip.frames.shape == (rendition.frames, rendition.height, rendition.width, 3)
            clips[str(len(renditions))] = clip.frames
            renditions.append(rendition)
    assert len({(r.frames, r.height, r.width) for r in renditions}) >= 6  # frame counts and sizes both vary
    np.savez(tmp_path / "clips.npz", **clips)
    (tmp_path / "probe.py").write_text(PROBE)
    done = subprocess.run([str(SERVE_PYTHON), str(tmp_path / "probe.py"), str(qwen_dir), str(tmp_path / "clips.npz")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    counted = json.loads(done.stdout.strip().splitlines()[-1])
    assert counted == [r.tokens for r in renditions]
