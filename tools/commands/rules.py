"""`tempo rules add|list|remove`: standing questions on streams (live monitoring, README "Monitoring")."""

from __future__ import annotations

import argparse
import json
import sys

from tempo import inputs
from tempo.errors import redact_url
from tempo.inputs import arg_type
from tempo.memory import RedisMemoryStore
from tempo.memory.alerts import AlertStore, Rule
from tempo.tools.commands.options import add_memory_options

_score = arg_type(inputs.Score, "score")


def _enter(value: str) -> float | None:
    """--enter: a score in [0, 1], or 'auto' (None: the rolling baseline)."""
    return None if value.strip().lower() == "auto" else _score(value)


_enter.__name__ = "score or auto"


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
    add.add_argument(
        "stream",
        type=arg_type(inputs.StreamName, "name"),
        help="stream name (the rule applies to this stream's segments)",
    )
    add.add_argument(
        "text", type=arg_type(inputs.RuleText, "text"), help='the standing question, e.g. "a person climbs the fence"'
    )
    add.add_argument(
        "--enter",
        type=_enter,
        default=0.8,
        help="score in [0, 1] that opens an episode (default 0.8), or 'auto': median + 3 MAD-sigma "
        "of this rule's scores on this stream over the last hour (after 30 segments of warm-up)",
    )
    add.add_argument(
        "--exit",
        type=_score,
        default=None,
        help="score below which an open episode closes (default: enter - 0.3; with --enter auto, median + 1 sigma)",
    )
    add.add_argument(
        "--min-segments",
        type=arg_type(inputs.MinSegments, "count"),
        default=2,
        help=f"consecutive segments >= enter to open, 1 to {inputs.MAX_MIN_SEGMENTS} (default 2)",
    )
    add.add_argument(
        "--cooldown",
        type=arg_type(inputs.CooldownSeconds, "seconds"),
        default=60.0,
        help="seconds of stream time after a close before re-opening, 0 to 604800 (default 60)",
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
        type=arg_type(inputs.WebhookUrl, "URL"),
        help="POST this rule's alert events to this http(s) URL (signed with $TEMPO_WEBHOOK_SECRET)",
    )
    add.add_argument("--json", action="store_true", help="print the stored rule as JSON")
    add.set_defaults(func=run_add)

    listing = sub.add_parser("list", help="list rules", description="List the rules (of one stream, or all).")
    listing.add_argument(
        "stream", nargs="?", default=None, type=arg_type(inputs.StreamName, "name"), help="only this stream's rules"
    )
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
        add_memory_options(action)
    parser.set_defaults(func=lambda _args: parser.print_help() or 2)


def _alerts(args: argparse.Namespace) -> AlertStore:
    return AlertStore.of(RedisMemoryStore.connect(args.redis_url))


def describe(rule: Rule) -> str:
    enter = "auto" if rule.enter is None else f"{rule.enter:g}"
    exit_ = "default" if rule.exit is None else f"{rule.exit:g}"
    extras = (" verify" if rule.verify else "") + (f" webhook={redact_url(rule.webhook)}" if rule.webhook else "")
    return (
        f"{rule.id}  {rule.stream}  enter={enter} exit={exit_} min-segments={rule.min_segments} "
        f"cooldown={rule.cooldown:g}s{extras}  {rule.text!r}"
    )


def _add_warnings(store: RedisMemoryStore, rule: Rule) -> list[str]:
    """What `rules add` accepts but the user should know: a stream that does not exist yet (the rule
    waits for it: it applies from that stream's first segment), a webhook nothing can sign."""
    from tempo.agent.monitoring.webhooks import webhook_secret
    from tempo.errors import TempoError

    warnings = []
    if rule.stream not in store.stream_names():
        warnings.append(
            f"there is no stream {rule.stream!r} yet: the rule waits for it and applies from its first segment"
        )
    if rule.webhook:
        try:
            webhook_secret()
        except TempoError as exc:
            warnings.append(f"this rule's webhook is not delivered until then: {exc}")
    return warnings


def run_add(args: argparse.Namespace) -> int:
    store = RedisMemoryStore.connect(args.redis_url)
    rule = AlertStore.of(store).add_rule(
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
    print(json.dumps(rule.shown()) if args.json else f"added {describe(rule)}")
    for warning in _add_warnings(store, rule):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    rules = _alerts(args).rules(args.stream)
    if args.json:
        print(json.dumps({"rules": [r.shown() for r in rules]}))
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
