"""`tempo threads [--json]`, `tempo threads show ID [--json]`, `tempo threads delete ID`: conversation
threads kept in memory's Redis (no model is loaded)."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from tempo import inputs
from tempo.agent.errors import ThreadNotFoundError
from tempo.agent.threads import ThreadStore
from tempo.inputs import arg_type
from tempo.tools.commands.chat import format_citation, printable
from tempo.tools.commands.options import add_memory_options, add_stream_option


def _store(args: argparse.Namespace) -> ThreadStore:
    from tempo.agent.checkpoint import RedisCheckpointSaver
    from tempo.memory import RedisMemoryStore

    client = RedisMemoryStore.connect(args.redis_url).client
    return ThreadStore(client, checkpointer=RedisCheckpointSaver(client))


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _inherit(parser: argparse.ArgumentParser, *dests: str) -> None:
    """Options also accepted before the sub-command (`tempo threads --redis-url U show ID`): the
    sub-command's copy only sets them when given, so it never resets the parent's value."""
    for action in parser._actions:
        if action.dest in dests:
            action.default = argparse.SUPPRESS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "threads",
        help="list conversation threads, or show one",
        description="List conversation threads (most recent first); `show ID` prints one with its turns.",
    )
    parser.add_argument("--json", action="store_true", help='print {"threads": [...]} as JSON')
    add_stream_option(parser, "only threads about this stream")
    add_memory_options(parser)
    parser.set_defaults(func=run_list)
    sub = parser.add_subparsers(dest="threads_command", metavar="{show,delete}")
    show = sub.add_parser("show", help="print a thread with its turns", description="Print a thread and its turns.")
    show.add_argument("thread_id", metavar="ID", type=arg_type(inputs.ThreadId, "thread id"))
    show.add_argument("--json", action="store_true", help='print {"id", "stream", "turns": [...]} as JSON')
    add_memory_options(show)
    _inherit(show, "json", "redis_url")
    show.set_defaults(func=run_show)
    delete = sub.add_parser("delete", help="delete a thread", description="Delete a thread and its graph state.")
    delete.add_argument("thread_id", metavar="ID", type=arg_type(inputs.ThreadId, "thread id"))
    add_memory_options(delete)
    _inherit(delete, "redis_url")
    delete.set_defaults(func=run_delete)


def run_list(args: argparse.Namespace) -> int:
    threads = [t.to_dict() for t in _store(args).list(args.stream)]
    if args.json:
        print(json.dumps({"threads": threads}))
        return 0
    if not threads:
        print("no threads yet (start one with `tempo chat --stream NAME`)")
        return 0
    rows = [(t["id"], ",".join(t["streams"]) or t["stream"], str(t["turns"]), _last_turn(t), _title(t["title"]))
            for t in threads]  # fmt: skip
    widths = [max(len(r[i]) for r in [_HEADER, *rows]) for i in range(4)]
    for r in [_HEADER, *rows]:
        cells = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2]), r[3].ljust(widths[3]), r[4]]
        print("  ".join(cells).rstrip())
    return 0


_HEADER = ("ID", "STREAM", "TURNS", "LAST TURN", "TITLE")
_TITLE_CHARS = 60  # a longer first question is cut with "…" (`threads show` prints it whole)


def _last_turn(thread: dict) -> str:
    """The time of the thread's last turn; "-" for a thread with none yet."""
    at = thread.get("last_turn_at")
    return _when(float(at)) if at else "-"


def _title(title: str) -> str:
    """The first question on one line, control characters escaped, at most _TITLE_CHARS characters."""
    text = printable(" ".join(title.split())) or "-"
    return text if len(text) <= _TITLE_CHARS else text[: _TITLE_CHARS - 1] + "…"


def run_show(args: argparse.Namespace) -> int:
    thread = _store(args).show(args.thread_id)
    if args.json:
        print(json.dumps(thread, ensure_ascii=False))
        return 0
    turns = thread["turns"]
    print(f"thread {thread['id']} on stream {thread['stream']!r}: {len(turns)} turn{'s' if len(turns) != 1 else ''}")
    for n, turn in enumerate(turns, 1):
        print(f"{n}. you: {turn['question']}")
        if turn["standalone_question"] != turn["question"]:
            print(f"   (understood as: {printable(turn['standalone_question'])})")  # may be model text
        print(f"   tempo: {printable(turn['answer'])}")
        for c in turn["citations"]:
            print("  " + format_citation(c))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    if not _store(args).delete(args.thread_id):
        raise ThreadNotFoundError(args.thread_id)
    print(f"deleted thread {args.thread_id}")
    return 0
