"""Regenerate tests/eval/data/goldens.json from the release's own lmms-eval task functions.

Not run in CI: it needs a checkout of the authors' release (github.com/FeiElysia/Tempo), e.g.

    git clone https://github.com/FeiElysia/Tempo /tmp/tempo-release
    .venv/bin/python tests/eval/make_goldens.py /tmp/tempo-release

It imports, from the release, `lmms_eval/tasks/{lvbench,videomme,mlvu,longvideobench}/utils.py` and
`lmms_eval/tasks/_task_utils/mcq_extract.py`, and calls their `*_doc_to_text`, `extract_mcq_answer` and
`parse_multi_choice_response` on the docs and answers below. Modules those files import but these
functions never touch (cv2, decord, datasets, loguru, lmms_eval.utils) are empty stand-ins, so only
PyYAML is needed. The per-task keyword arguments are resolved the way lmms-eval's Task does for a
model with no entry of its own (the release's "tempo"): the yaml's `lmms_eval_specific_kwargs`
updated with its `default` entry. The generation lengths are read from the same yaml files.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).parent / "data" / "goldens.json"
TASKS = {  # our name: (task folder, yaml of the task the release's scripts run, utils function)
    "lvbench": ("lvbench", "lvbench.yaml", "lvbench_doc_to_text"),
    "videomme": ("videomme", "videomme.yaml", "videomme_doc_to_text"),
    "mlvu": ("mlvu", "mlvu_dev.yaml", "mlvu_doc_to_text"),
    "longvideobench": ("longvideobench", "longvideobench_val_v.yaml", "longvideobench_doc_to_text"),
}

# Docs in the field layout of each Hugging Face dataset (values made up, shapes real).
DOCS: dict[str, list[dict[str, Any]]] = {
    "lvbench": [
        {"question": "What is the man holding when he enters the kitchen?\n(A) a cup\n(B) a knife\n(C) a phone\n"
                     "(D) nothing", "answer": "C"},
        {"question": "Which team scores first?", "options": ["Red", "Blue", "Neither", "Both at once"],
         "answer": "B"},
        {"question": "Where is the <image> sign?\n(A) left\n(B) right\n(C) top\n(D) bottom", "answer": "A"},
    ],
    "videomme": [
        {"question": "How many people appear in the video?", "options": ["A. One.", "B. Two.", "C. Three.",
                                                                         "D. Four."], "answer": "B"},
        {"question": "What is the video mainly about?  ", "options": ["A. Cooking", "B. A football match",
                                                                       "C. A lecture", "D. A concert"],
         "answer": "D"},
    ],
    "mlvu": [
        {"question": "What is the main background of the video?\n(A) a forest\n(B) a city\n(C) a desert\n"
                     "(D) the sea", "answer": "A"},
        {"question": "How many times does the dog jump?\n(A) 1\n(B) 2\n(C) 3\n(D) 4", "answer": "C"},
    ],
    "longvideobench": [
        {"question": "What colour is the car that parks next to the tree?", "option0": "red", "option1": "blue",
         "option2": "green", "option3": "white", "option4": "N/A", "correct_choice": 1},
        {"question": "After the woman opens the door, what does she pick up?", "option0": "a bag",
         "option1": "keys", "option2": "a book", "option3": "a hat", "option4": "an umbrella",
         "correct_choice": 4},
    ],
}

# Messy model outputs for the letter extraction.
RESPONSES = [
    "B", "(C)", "C.", "The answer is D.", "Answer: A", "The best answer is (B).", "I think it's B, not A.",
    "A. The man", "D) nothing", "b", "", "   ", "Option C", "The correct option is A because B is wrong.",
    "Best option: (C", "C)", "It must be (A) or (B)", "None of the options", "BD", "E", "(E)",
    "Based on the video, the person is cooking.", "The answer\nB", "答案是C", "A,B", "My choice is D.",
    "The answer is B. The man holds a knife.", "Considering all frames, I would pick option D here.",
    "It is not clear from the video what happens after the woman leaves the room at the end of the scene",
    "Clearly", "a cup", "ABCD", "The best option is E.",
]


def _stub(name: str, **attrs: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    sys.modules[name] = module
    return module


def _load(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _task_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load("".join(line for line in path.read_text().splitlines(True) if "!function" not in line))


def main(release: Path, commit: str | None = None) -> None:
    tasks_dir = release / "lmms_eval" / "tasks"
    # Packages whose submodules load from the release's files; stand-ins for what these functions never use.
    _stub("lmms_eval", __path__=[str(release / "lmms_eval")])
    _stub("lmms_eval.tasks", __path__=[str(tasks_dir)])
    _stub("lmms_eval.tasks._task_utils", __path__=[str(tasks_dir / "_task_utils")])
    _stub("lmms_eval.utils")
    sys.modules["lmms_eval"].utils = sys.modules["lmms_eval.utils"]
    _stub("loguru", logger=None)
    _stub("cv2")
    _stub("decord", VideoReader=None, cpu=None)
    _stub("datasets", Dataset=object)
    if importlib.util.find_spec("PIL") is None:
        _stub("PIL", Image=None)
    mcq = _load(tasks_dir / "_task_utils" / "mcq_extract.py", "lmms_eval.tasks._task_utils.mcq_extract")

    out: dict[str, Any] = {"release_commit": commit or _commit(release), "benchmarks": {}}
    for name, (folder, task_yaml, function) in TASKS.items():
        utils = _load(tasks_dir / folder / "utils.py", f"release_{folder}_utils")
        config = _task_yaml(tasks_dir / folder / task_yaml)
        kwargs = dict(config["lmms_eval_specific_kwargs"])
        kwargs.update(kwargs.get("default", {}))  # lmms-eval's rule for a model without its own entry
        to_text = getattr(utils, function)
        out["benchmarks"][name] = {
            "lmms_task": config["task"],
            "max_new_tokens": config["generation_kwargs"]["max_new_tokens"],
            "prompts": [{"doc": doc, "text": to_text(dict(doc), dict(kwargs))} for doc in DOCS[name]],
        }
    lvb = _load(tasks_dir / "longvideobench" / "utils.py", "release_longvideobench_utils")
    sentinel = ["?"]  # the release guesses randomly when nothing parses; a one-item list shows that
    out["extraction"] = [
        {
            "response": text,
            "mcq_abcd": mcq.extract_mcq_answer(text, choices=["A", "B", "C", "D"]),
            "longvideobench": lvb.parse_multi_choice_response(text, ["A", "B", "C", "D", "E"], {}),
            "longvideobench_guessed": lvb.parse_multi_choice_response(text, sentinel, {}) == "?",
        }
        for text in RESPONSES
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}")


def _commit(release: Path) -> str:
    head = release / ".git" / "HEAD"
    if not head.exists():
        return "unknown"
    ref = head.read_text().strip()
    if ref.startswith("ref: "):
        target = release / ".git" / ref[5:]
        return target.read_text().strip() if target.exists() else ref
    return ref


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit("usage: make_goldens.py RELEASE_CHECKOUT [COMMIT]")
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) == 3 else None)
