"""The exact question text the release's lmms-eval wrapper sends for each of the paper's benchmarks.

The release (FeiElysia/Tempo) evaluates through lmms-eval: each task's `doc_to_text` turns one
annotation row ("doc") into a string, the wrapper (`lmms_eval/models/simple/tempo.py`) removes any
`<image>` from it, and that one string is both the compressor's query and the global LLM's question.
Each task's yaml picks its trailing instruction (`lmms_eval_specific_kwargs.default.post_prompt`,
since the release has no "tempo" entry there) and its answer length (`generation_kwargs.max_new_tokens`);
the release's eval scripts (scripts/eval/*/eval_*.sh) fix the rest: 2 fps, 8–1024 frames, windows of 8,
`model_max_length=32768`, budget 4096 or 8192.

Docs are plain dicts with the field names of the Hugging Face datasets lmms-eval loads
(lmms-lab/LVBench, lmms-lab/Video-MME, sy1998/MLVU_dev, longvideobench/LongVideoBench); see
`tempo.eval.datasets` for reading them from disk. tests/eval/data/prompt_goldens.json holds strings
made by the release's own functions (tests/eval/make_goldens.py) that these must equal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# The release's wrapper removes this marker from every question before using it.
IMAGE_MARKER = "<image>"

# Trailing instructions and preambles, verbatim from the release's task files.
LVBENCH_INSTRUCTION = "\nAnswer the question with the option letter"  # lvbench.yaml (no final period)
VIDEOMME_PREAMBLE = (
    "Select the best answer to the following multiple-choice question based on the video and the subtitles. "
    "Respond with only the letter (A, B, C, or D) of the correct option."
)  # videomme/utils.py, also without subtitles
VIDEOMME_INSTRUCTION = "\nAnswer with the option's letter from the given choices directly."  # videomme.yaml
MLVU_INSTRUCTION = "\nOnly give the best option.\nBest option: ("  # mlvu_dev.yaml: the model completes "("
LONGVIDEOBENCH_INSTRUCTION = "Answer with the option's letter from the given choices directly.\n"
# longvideobench marks absent options (a question has 4 or 5) with this string.
LONGVIDEOBENCH_NO_OPTION = "N/A"


def lvbench_prompt(doc: Mapping[str, Any]) -> str:
    """LVBench: the question, `\\n(A) …` per option when the row lists options separately (the
    official rows already carry them inside the question), then the instruction."""
    question = str(doc["question"])
    options = list(doc.get("options") or [])
    if options:
        question += "\n" + "\n".join(f"({LETTERS[i]}) {option}" for i, option in enumerate(options))
    return question + LVBENCH_INSTRUCTION


def videomme_prompt(doc: Mapping[str, Any]) -> str:
    """Video-MME (without subtitles): preamble, question, the options as given ("A. …"), instruction;
    with its subtitle text loaded (`tempo eval videomme --subtitles`): lmms-eval's videomme_w_subtitle."""
    from tempo.eval.subtitles import SUBTITLE_KEY, videomme_subtitle_prompt

    if SUBTITLE_KEY in doc:
        return videomme_subtitle_prompt(doc, VIDEOMME_PREAMBLE)
    options = "\n".join(str(option) for option in doc["options"])
    return f"{VIDEOMME_PREAMBLE}\n{doc['question']}\n{options}\n{VIDEOMME_INSTRUCTION}"


def mlvu_prompt(doc: Mapping[str, Any]) -> str:
    """MLVU dev: the question (its options are part of it in the dataset), then the instruction."""
    return str(doc["question"]) + MLVU_INSTRUCTION


def longvideobench_options(doc: Mapping[str, Any]) -> list[str]:
    """The options `option0`…`option4` that are present, in order."""
    return [str(doc[k]) for k in (f"option{i}" for i in range(5)) if doc.get(k) not in (None, LONGVIDEOBENCH_NO_OPTION)]


def longvideobench_prompt(doc: Mapping[str, Any]) -> str:
    """LongVideoBench (val, video): question, `A. …` per present option, instruction."""
    options = "\n".join(f"{LETTERS[i]}. {option}" for i, option in enumerate(longvideobench_options(doc)))
    return f"{doc['question']}\n{options}\n{LONGVIDEOBENCH_INSTRUCTION}"


@dataclass(frozen=True)
class BenchmarkSpec:
    """How the release evaluates one benchmark. Frames and tokens as named."""

    name: str  # our name: `tempo eval NAME`
    title: str  # as the paper's table names it
    lmms_task: str  # the lmms-eval task the release's scripts run
    build_text: Callable[[Mapping[str, Any]], str]
    max_new_tokens: int  # generation_kwargs.max_new_tokens of the task
    choices: tuple[str, ...]  # letters the task's answer extraction considers
    context_limit: int = 32768  # model_max_length in the release's eval scripts
    fps: float = 2.0  # video_fps
    min_frames: int = 8  # min_frames_num in the eval scripts (the wrapper's default is 4)
    max_frames: int = 1024  # max_frames_num

    def question(self, doc: Mapping[str, Any]) -> str:
        """The text the release sends: compressor query and LLM question alike."""
        return release_question(self.build_text(doc))


def release_question(context: str) -> str:
    """What the release's wrapper does to a task's text before using it: drop `<image>` markers."""
    return context.replace(IMAGE_MARKER, "")


BENCHMARKS: dict[str, BenchmarkSpec] = {
    spec.name: spec
    for spec in (
        BenchmarkSpec("lvbench", "LVBench", "lvbench", lvbench_prompt, 16, tuple("ABCD")),
        BenchmarkSpec("videomme", "Video-MME", "videomme", videomme_prompt, 16, tuple("ABCD")),
        BenchmarkSpec("mlvu", "MLVU", "mlvu_dev", mlvu_prompt, 16, tuple("ABCD")),
        BenchmarkSpec("longvideobench", "LongVideoBench", "longvideobench_val_v", longvideobench_prompt, 32,
                      tuple("ABCDE")),
    )
}


def benchmark(name: str) -> BenchmarkSpec:
    """The spec of `name` (one of BENCHMARKS); KeyError names the known ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}") from None


def option_letters(count: int) -> Sequence[str]:
    return tuple(LETTERS[:count])
