"""`tempo chat --stream NAME [--thread ID]`: an interactive conversation about a stream in memory.

Each line is a question (answers stream as they are generated, then their citations with times);
follow-ups are rewritten with the thread's history. Commands: /reset (new thread), /threads (this
stream's threads), /history (this thread's turns), /quit. Works on a pipe too: lines are read from
stdin until its end, without prompts. Ctrl-C while an answer comes cancels that answer and returns to
the prompt: the model stops at its next token or compressor batch (tempo.models.cancel), no turn is
kept; Ctrl-C at the prompt quits. Model text is printed with control characters escaped (ESC shows as
the four characters `\x1b`), so it cannot drive the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from tempo.agent.threads import check_thread_id, new_thread_id
from tempo.engine.timeexpr import format_clock as clock
from tempo.errors import TempoError
from tempo.inputs import check_question
from tempo.models.cancel import AnswerCancelled, cancellable
from tempo.settings import AskSettings
from tempo.tools.commands.options import (
    add_max_new_tokens_option,
    add_memory_options,
    add_model_options,
    add_stream_option,
    add_thread_option,
    add_top_k_option,
    check_streams_first,
)

if TYPE_CHECKING:
    from tempo.engine.result import TurnResult

# Model text is shown as it is, except control characters (a terminal would obey escape sequences):
# those are written escaped, as Python writes them (`\x1b`, `\x0c`, `\x9b`); tab and newline stay.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0)]}


def printable(text: str) -> str:
    return text.translate(_CONTROL)


HELP = "commands: /reset (new thread), /threads, /history, /quit"


def format_citation(c: dict[str, Any], with_stream: bool = False) -> str:
    span = clock(c["start"]) if c["end"] == c["start"] else f"{clock(c['start'])}–{clock(c['end'])}"
    if with_stream and c.get("stream"):  # an answer across streams: "cam2 0:42"
        span = f"{c['stream']} {span}"
    segments = ", ".join(str(i) for i in c["segments"]) or "-"
    said = f"  said {clock(c['cue']['start'])}: {printable(c['cue']['text'])!r}" if c.get("cue") else ""
    return f"  [{span}] segment{'s' if len(c['segments']) != 1 else ''} {segments}  ({printable(c['text'])!r}){said}"


def print_turn_extras(result: TurnResult, out: TextIO) -> None:
    """What follows the streamed answer: citations with times, rewrite, scope and widening notes."""
    if result["standalone_question"] and result["standalone_question"] != result["question"]:
        print(f"  (understood as: {printable(result['standalone_question'])})", file=out)  # may be model text
    scope = result.get("time_scope")
    if scope:
        spans = scope.get("ranges") or [scope]
        where = ", ".join(f"{clock(r['start'])}–{clock(r['end'])}" for r in spans)
        print(f"  (time scope {where}: {scope['phrase']})", file=out)
        for name, part in (scope.get("streams") or {}).items():  # across streams: each on its own clock
            own = ", ".join(f"{clock(r['start'])}–{clock(r['end'])}" for r in part["ranges"]) or "nothing"
            print(f"    {name}: {own}" + (f" ({part['note']})" if part.get("note") else ""), file=out)
    if result.get("widened"):
        print(f"  (widened: {result['widen_reason']})", file=out)
    if result["citations"]:
        print("citations:", file=out)
        across = len(result.get("streams") or []) > 1
        for c in result["citations"]:
            print(format_citation(c, across), file=out)
    else:
        print("citations: none", file=out)
    evidence = result["evidence"]
    if evidence:
        used = ", ".join(
            f"{e['index']} ({clock(e['start'])}–{clock(e['end'])}, {e['relevance']:.2f})" for e in evidence[:5]
        )
        print(f"evidence: {used}", file=out)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="talk about a stream in memory, with follow-up questions",
        description=(
            "Ask questions about a stream in memory, one per line; follow-ups use the thread's history. "
            "The thread persists: continue it later with --thread ID (or `tempo ask --stream S --thread ID`). "
            + HELP
        ),
    )
    add_stream_option(parser, "memory stream to talk about", required=True)
    add_thread_option(parser, "thread id to continue or start (default: a new one)")
    add_top_k_option(parser, AskSettings.top_k, "candidate segments per question (as tempo ask --stream)")
    add_max_new_tokens_option(parser)
    add_model_options(parser)
    add_memory_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_streams_first(args.redis_url, [args.stream])  # before the model stack is imported
    from tempo.agent.conversations import Conversations
    from tempo.service import TempoService

    service = TempoService(model=args.model, embedder=args.embedder, redis_url=args.redis_url, device=args.device)
    # The per-question settings, made once from the defaults and the flags given.
    settings = AskSettings().with_inputs(top_k=args.top_k, max_new_tokens=args.max_new_tokens)
    conversations = Conversations(service, settings=settings)
    service.stream(args.stream)  # unknown stream: one sentence, before any prompt
    thread_id = check_thread_id(args.thread) if args.thread else new_thread_id()
    if args.thread:
        conversations.threads.open(args.stream, thread_id)  # refuses a thread about another stream
    return chat_loop(conversations, args.stream, thread_id, sys.stdin, sys.stdout)


@contextlib.contextmanager
def cancel_on_ctrl_c() -> Iterator[threading.Event]:
    """A cancel scope for one answer that Ctrl-C sets: the question stops where the model next looks
    (AnswerCancelled). A second Ctrl-C before it stopped raises KeyboardInterrupt as usual; so does
    Ctrl-C outside the main thread, where no handler can be installed (the scope is then set as the
    interrupt leaves, so the model still stops)."""
    with cancellable() as cancel:
        previous = None

        def on_sigint(signum: int, frame: Any) -> None:
            if cancel.is_set():
                raise KeyboardInterrupt
            cancel.set()

        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            yield cancel
        except KeyboardInterrupt:
            cancel.set()  # the model, in its worker threads, stops at its next step
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


def chat_loop(conversations: Any, stream: str, thread_id: str, inp: TextIO, out: TextIO) -> int:
    interactive = inp.isatty() and out.isatty()
    print(f"thread {thread_id} on stream {stream!r}; {HELP}", file=out)
    while True:
        if interactive:
            out.write("you> ")
            out.flush()
        try:
            line = inp.readline()
        except KeyboardInterrupt:  # Ctrl-C at the prompt quits
            print(file=out)
            break
        if not line:  # end of input
            break
        text = line.strip()
        if not text:
            continue
        if text in ("/quit", "/exit"):
            break
        if text == "/reset":
            thread_id = new_thread_id()
            print(f"new thread {thread_id}", file=out)
            continue
        if text == "/threads":
            threads = conversations.list_threads(stream)
            if not threads:
                print("no threads yet", file=out)
            for t in threads:
                mark = "*" if t["id"] == thread_id else " "
                print(f"{mark} {t['id']}  {t['turns']} turn{'s' if t['turns'] != 1 else ''}", file=out)
            continue
        if text == "/history":
            try:
                turns = conversations.show_thread(thread_id)["turns"]
            except TempoError:
                turns = []
            if not turns:
                print("no turns yet on this thread", file=out)
            for n, turn in enumerate(turns, 1):
                print(f"{n}. you: {turn['question']}", file=out)
                print(f"   tempo: {printable(turn['answer'])}", file=out)
            continue
        if text.startswith("/"):
            print(f"unknown command {text.split()[0]!r}; {HELP}", file=out)
            continue

        def show(piece: str) -> None:
            out.write(printable(piece))
            out.flush()

        try:
            question = check_question(text)
        except TempoError as exc:
            print(f"error: {exc}", file=out)
            continue
        out.write("tempo> ")
        out.flush()
        try:
            with cancel_on_ctrl_c():
                result = conversations.ask(stream, question, thread_id=thread_id, on_text=show)
        except TempoError as exc:
            print(f"\nerror: {exc}", file=out)
            continue
        except (AnswerCancelled, KeyboardInterrupt):  # Ctrl-C during an answer: dropped, the chat goes on
            print("\n(cancelled; Ctrl-C again at the prompt quits)", file=out)
            continue
        print(file=out)
        print_turn_extras(result, out)
    return 0
