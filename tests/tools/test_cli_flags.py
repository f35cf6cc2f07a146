"""The CLI fuzz table (issue 8 §4): every flag that takes a value, of every command, against
{nan, inf, -inf, negative, zero, huge, empty, non-number}.

The flags are read from the argparse parsers themselves, so a new flag without a row in FLAG_TABLE
fails `test_every_value_flag_has_a_row`. Parsing runs in process (the parser is what refuses a bad
value; the command never runs), and a sample goes through real `tempo` processes to prove the
boundary: exit 2, one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
from collections.abc import Iterator

import pytest
from tempo.tools.cli import build_parser

FUZZ = {
    "nan": "nan",
    "inf": "inf",
    "-inf": "-inf",
    "negative": "-1",
    "zero": "0",
    "huge": "1e300",
    "huge-int": "99999999999999999999",
    "empty": "",
    "non-number": "abc",
}
ALL = frozenset(FUZZ)
NONE: frozenset[str] = frozenset()
NAMES = frozenset({"nan", "inf", "zero", "huge", "huge-int", "non-number"})  # stream names, thread ids

# flag -> the fuzz values its commands accept (every other value is refused with exit 2). One row per
# flag name: a flag has the same type in every command that has it (checked below).
FLAG_TABLE: dict[str, frozenset[str]] = {
    # numbers with limits: none of the fuzz values is a sensible setting, but 0 is a segment index/seed
    "--fps": NONE,
    "--window": NONE,
    "--max-edge": NONE,
    "--start-segment": frozenset({"zero"}),
    "--lease-wait": frozenset({"zero"}),  # tempo ingest: 0 refuses at once; at most 86400 s
    "--max-age": NONE,
    "--max-bytes": NONE,
    "--compact-after": NONE,
    "--cold-after": NONE,
    "--compact-tokens": NONE,
    "--max-segments": NONE,
    "--batch-size": NONE,
    "--top-k": NONE,
    "--budget": NONE,
    "--context-limit": NONE,
    "--max-new-tokens": NONE,
    "--port": NONE,
    "--seed": frozenset({"zero"}),
    "--proxy-quality": frozenset({"zero"}),  # CRF 0 is lossless
    "--duration": NONE,
    "--concurrency": NONE,
    "--idle-exit": NONE,
    "--limit": NONE,
    # names with a pattern (letters, digits, . _ - and : for threads; starting with a letter or digit)
    "--stream": NAMES,
    "--thread": NAMES,
    "--name": NAMES,  # a worker's consumer name: the stream-name pattern
    "--device": NONE,  # cpu, cuda, cuda:N, mps, xpu(:N); availability is checked when the model loads
    "--sampling": NONE,  # release or stream
    "--decode": NONE,  # auto, cpu or gpu
    "--mode": NONE,  # reference or memory
    "--redis-url": NONE,  # redis://, rediss://, unix://
    # free text that must not be blank: checkpoint paths or hub ids, host names, the demo question
    "--model": ALL - {"empty"},
    "--embedder": ALL - {"empty"},
    "--host": ALL - {"empty"},
    "--question": ALL - {"empty"},
    "--data": ALL - {"empty"},  # tempo eval's benchmark directory (judged when read)
    "--out": ALL - {"empty"},  # tempo eval's results file
    "--token-file": ALL - {"empty"},  # a path, read (and judged) when the server starts
    # open weights (tempo ask with a Qwen3-VL --model): a router checkpoint, a remote answerer
    "--router": ALL - {"empty"},
    "--answer-url": NONE,  # http(s)://host[:port]/v1
    "--answer-model": ALL - {"empty"},
    "--family": NONE,  # tempo model tiny: tempo or qwen3-vl
    # questions across streams: comma-separated stream names; tempo search's scope in stream seconds
    "--streams": NAMES,
    "--start": frozenset({"zero"}),
    "--end": frozenset({"zero"}),
    "--subtitles": ALL - {"empty"},  # tempo ingest's subtitle files (judged when read)
    "--asr": ALL - {"empty"},  # tempo ingest/serve: a Whisper directory or hub id (judged when loaded)
    # tempo serve
    "--max-queue": NONE,
    "--ask-timeout": NONE,
    "--max-body": NONE,
    "--max-upload": NONE,
    "--cors-origin": NONE,  # http(s)://host[:port]
    "--media-root": ALL - {"empty"},  # a directory (checked at start)
    "--cold-url": ALL - {"empty"},  # tempo ingest's cold-tier directory or fsspec URL (checked at start)
    # monitoring rules: scores in [0, 1] (0 allowed; --enter also takes 'auto'), a cooldown of 0 is none,
    # an http(s) webhook URL; --since is Unix seconds (0 allowed), an ISO time or a duration back
    "--enter": frozenset({"zero"}),
    "--exit": frozenset({"zero"}),
    "--min-segments": NONE,
    "--cooldown": frozenset({"zero"}),
    "--webhook": NONE,
    "--since": frozenset({"zero"}),
    # the bearer token is judged when the server starts (tempo.tools.http_security), not by the parser
    "--token": ALL,
}


def value_flags(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.Action]]:
    """(command path, action) for every option that takes a value, walking the sub-commands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from value_flags(sub, (*path, name))
        elif action.option_strings and action.nargs != 0:
            yield path, action


def subparser(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    for name in path:
        (subs,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = subs.choices[name]
    return parser


def required_args(parser: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for the command's required arguments (valid for every type they have)."""
    out: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            continue
        if not action.option_strings:
            out.append(str(next(iter(action.choices))) if action.choices else "x1")
        elif action.required:
            out.append(f"{action.option_strings[-1]}=x1")
    return out


PARSER = build_parser()
CASES = [
    (path, action.option_strings[-1], kind)
    for path, action in value_flags(PARSER)
    for kind in FUZZ
]


def parse(argv: list[str]) -> tuple[int, str]:
    """(exit status, stderr) of parsing argv; 0 when the parser accepted it."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            PARSER.parse_args(argv)
        except SystemExit as exc:
            return int(exc.code or 0), err.getvalue()
    return 0, err.getvalue()


def test_every_value_flag_has_a_row():
    flags = {action.option_strings[-1] for _, action in value_flags(PARSER)}
    missing = sorted(flags - set(FLAG_TABLE))
    assert not missing, f"flags without a row in FLAG_TABLE (decide which values are valid): {missing}"
    assert not set(FLAG_TABLE) - flags, "rows for flags that no command has"
    assert len(CASES) >= 9 * 40  # the walk found the sub-commands' flags (model tiny --seed included)
    assert (("model", "tiny"), "--seed", "zero") in CASES


def test_a_flag_has_one_type_in_every_command():
    types: dict[str, set[str]] = {}
    for _, action in value_flags(PARSER):
        types.setdefault(action.option_strings[-1], set()).add(getattr(action.type, "__name__", repr(action.type)))
    assert {flag: names for flag, names in types.items() if len(names) > 1} == {}


@pytest.mark.parametrize(("path", "flag", "kind"), CASES, ids=[f"{' '.join(p)} {f} {k}" for p, f, k in CASES])
def test_flag_value(path, flag, kind):
    argv = [*path, *required_args(subparser(PARSER, path)), f"{flag}={FUZZ[kind]}"]
    code, err = parse(argv)
    assert "Traceback" not in err
    if kind in FLAG_TABLE[flag]:
        assert code == 0 and err == "", f"tempo {' '.join(argv)} refused a valid value: {err}"
    else:
        command = " ".join(("tempo", *path))
        assert code == 2, f"tempo {' '.join(argv)} accepted {FUZZ[kind]!r}"
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith(f"{command}: error: argument {flag}: "), err
        assert lines[0].endswith(f"(see `{command} --help`)")


# The cases issue 8 reported as tracebacks, and absurd values, through real processes.
GE = "input should be greater than or equal to"
LE = "input should be less than or equal to"
INGEST = ["ingest", "v.mp4", "--stream", "s"]
SAMPLE = [
    (["ask", "v.mp4", "what?", "--fps", "nan"], "argument --fps: input should be a finite number (got 'nan')"),
    (["ask", "v.mp4", "what?", "--fps", "inf"], "argument --fps: input should be a finite number (got 'inf')"),
    ([*INGEST, "--fps", "1e300"], f"argument --fps: {LE} 240"),
    (["segments", "v.mp4", "--fps", "1e-300"], f"argument --fps: {GE} 0.01"),
    (["segments", "v.mp4", "--start-segment", "-1"], f"argument --start-segment: {GE} 0"),
    ([*INGEST, "--device", "nonsense"], "argument --device: use cpu, cuda, cuda:N, mps"),
    (["mcp", "--port", "99999"], f"argument --port: {LE} 65535"),
    ([*INGEST, "--max-age=-5"], "argument --max-age: input should be greater than 0"),
    ([*INGEST, "--max-bytes=-5"], f"argument --max-bytes: {GE} 1"),
    ([*INGEST, "--max-segments=-5"], f"argument --max-segments: {GE} 1"),
    (["ask", "--stream", "cam", "what?", "--top-k", "abc"], "argument --top-k: input should be a whole number"),
    (["streams", "--redis-url", "http://x.invalid"], "argument --redis-url: expected a redis://, rediss:// or unix://"),
]


@pytest.mark.parametrize(("argv", "message"), SAMPLE, ids=[" ".join(a) for a, _ in SAMPLE])
def test_bad_flags_in_a_real_process_are_one_line(argv, message, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tempo.tools.cli", *argv], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"tempo {argv[0]}: error: {message}")


def test_a_device_this_machine_lacks_is_one_line(live_memory, tmp_path):
    """--device is well-formed at parse time; whether the machine has it is known when the model loads."""
    for argv in (
        ["ask", "--stream", "cam", "What is in the picture?", "--device", "cuda:999"],
        ["ingest", str(live_memory.root / "cam.mp4"), "--stream", "cam-device", "--device", "cuda:999"],
    ):
        done = subprocess.run(
            live_memory.cli(*argv), capture_output=True, text=True, env=live_memory.env(), cwd=tmp_path, timeout=120
        )
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.splitlines()
        assert line.startswith("tempo: error: device 'cuda:999' is not available: this machine has ")
