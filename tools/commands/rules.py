"""`tempo rules add|list|remove`: standing questions on streams (live monitoring, README "Monitoring")."""

from __future__ import annotations

import argparse
import json

from tempo.memory import RedisMemoryStore
from tempo.memory.alerts import AlertStore, Rule


def _threshold(value: str) -> float | None:
    """A score in [0, 1] or 'auto' (None); range checks are the rule validator's."""
    if value.strip().lower() == "auto":
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1] or 'auto', not {value!r}") from None


def _exit(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], not {value!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rules",
        help="standing questions scored on every new segment of a stream",
        description=(
            "Rules are standing questions on a stream. Every segment an ingest commits is scored for "
            "each rule of its stream (the SVLM's zero-shot Yes/No relevance, computed in the same "
            "forward pass as the segment's memory); hysteresis turns the scores into episodes, and "
            "each episode is one alert (`tempo alerts`). Rules apply from the next segment on, also "
            "to an ingest that is already running."
        ),
    )
    sub = parser.add_subparsers(dest="rules_command", metavar="ACTION")

    add = sub.add_parser(
        "add",
        help="add a rule to a stream",
        description=(
            "Add a standing question. An episode opens when the score stays >= --enter for "
            "--min-segments consecutive segments and closes at the first segment below --exit; after "
            "a close, --cooldown seconds of stream time pass before another can open."
        ),
    )
    add.add_argument("stream", help="stream name (the rule applies to this stream's segments)")
    add.add_argument("text", help='the standing question, e.g. "a person climbs the fence"')
    add.add_argument(
        "--enter",
        type=_threshold,
        default=0.8,
        help="score in [0, 1] that opens an episode (default 0.8), or 'auto': median + 3 MAD-sigma "
        "of this rule's scores on this stream over the last hour (after 30 segments of warm-up)",
    )
    add.add_argument(
        "--exit",
        type=_exit,
        default=None,
        help="score below which an open episode closes (default: enter - 0.3; with --enter auto, median + 1 sigma)",
    )
    add.add_argument("--min-segments", type=int, default=2, help="consecutive segments >= enter to open (default 2)")
    add.add_argument(
        "--cooldown", type=float, default=60.0, help="seconds after a close before re-opening (default 60)"
    )
    add.add_argument(
        "--verify",
        action="store_true",
        help="when an episode opens, ask the global LLM the rule as a yes/no question over its segments and "
        "keep its one-line reason on the alert",
    )
    add.add_argument(
        "--webhook",
        default=None,
        help="POST this rule's alert events to this http(s) URL (signed with $TEMPO_WEBHOOK_SECRET)",
    )
    add.add_argument("--json", action="store_true", help="print the stored rule as JSON")
    add.set_defaults(func=run_add)

    listing = sub.add_parser("list", help="list rules", description="List the rules (of one stream, or all).")
    listing.add_argument("stream", nargs="?", default=None, help="only this stream's rules")
    listing.add_argument("--json", action="store_true", help='print {"rules": [...]} as JSON')
    listing.set_defaults(func=run_list)

    remove = sub.add_parser(
        "remove",
        help="remove a rule",
        description="Remove a rule; an episode it has open is closed at the stream's next segment.",
    )
    remove.add_argument("id", help="rule id, as `tempo rules list` shows it (r1, r2, ...)")
    remove.set_defaults(func=run_remove)
    for action in (add, listing, remove):
        action.add_argument("--redis-url", default=None, help="Redis URL (default: $TEMPO_REDIS_URL or embedded)")
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)


def _alerts(args: argparse.Namespace) -> AlertStore:
    return AlertStore.of(RedisMemoryStore.connect(args.redis_url))


def describe(rule: Rule) -> str:
    enter = "auto" if rule.enter is None else f"{rule.enter:g}"
    exit_ = "default" if rule.exit is None else f"{rule.exit:g}"
    extras = (" verify" if rule.verify else "") + (f" webhook={rule.webhook}" if rule.webhook else "")
    return (
        f"{rule.id}  {rule.stream}  enter={enter} exit={exit_} min-segments={rule.min_segments} "
        f"cooldown={rule.cooldown:g}s{extras}  {rule.text!r}"
    )


def run_add(args: argparse.Namespace) -> int:
    rule = _alerts(args).add_rule(
        Rule(
            id="",
            stream=args.stream,
            text=args.text,
            enter=args.enter,
            exit=args.exit,
            min_segments=args.min_segments,
            cooldown=args.cooldown,
            verify=args.verify,
            webhook=args.webhook,
        )
    )
    print(json.dumps(rule.to_json()) if args.json else f"added {describe(rule)}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    rules = _alerts(args).rules(args.stream)
    if args.json:
        print(json.dumps({"rules": [r.to_json() for r in rules]}))
    elif not rules:
        print("no rules yet (add one with `tempo rules add STREAM TEXT`)")
    else:
        for rule in rules:
            print(describe(rule))
    return 0


def run_remove(args: argparse.Namespace) -> int:
    rule = _alerts(args).remove_rule(args.id)
    print(f"removed {describe(rule)}")
    return 0
