"""Monitoring in Redis (issue 11): the rule book, rule state committed with its segment, the alert log.

Key layout (prefix `tempo`; `{name}` is the stream's hash tag, as in store.py):

    tempo:rules                  HASH   rule id → rule JSON
    tempo:rules:seq              STRING counter for rule ids (r1, r2, ...; never reused)
    tempo:rules:version          STRING bumped by every add/remove: a running ingest re-reads the rules
                                        when it moves (one GET per batch)
    tempo:s:{name}:rs            HASH   rule id → hysteresis state JSON; '@' → last segment applied
    tempo:s:{name}:rh:{rule}     LIST   "start score" per segment, newest last (for --enter auto)
    tempo:s:{name}:rsc           HASH   work-queue job number → its rule scores, staged while the job
                                        waits for its predecessors (see memory/queue.py)
    tempo:alert:{id}             HASH   the alert's fields, each a JSON value (latest version)
    tempo:alerts:t               ZSET   alert id, score opened_at (Unix seconds)
    tempo:alerts:events          STREAM one entry per opened / verified / closed event (bounded)
    tempo:alerts:verify          SET    ids of alerts waiting for their --verify answer

Atomicity. The writer of a stream commits each segment by `RedisMemoryStore.put_segments` and, in
the same MULTI/EXEC, `AlertStore.commit_rules` (one script): rule states, score history, alert
fields and events land together with the segment or not at all, and the script applies only when
that very segment was just written (`committed` = its index and the state's '@' is older), so a
re-put after a crash changes nothing. A work-queue worker (memory/queue.py) lands a job that may
commit several segments at once (its own and staged successors): it steps the rules over all of
them and commits each one's rule script "through" (`committed` ≥ its index, '@' older) in the same
MULTI/EXEC as the landing. On a single Redis (or Sentinel) this is exact. On a Redis Cluster the
deployment-wide alert keys (the event stream every consumer tails, the time index, the alerts) live
on other shards than the stream, which one script or transaction cannot span: there adding a rule is
refused with ClusterUnsupportedError rather than committing alerts non-atomically (ingest, recall
and the work queue do run on a cluster; a stream without rules commits no alert keys).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import redis
from tempo.inputs import MAX_COOLDOWN, MAX_MIN_SEGMENTS, MAX_RULE_TEXT
from tempo.memory.cluster import is_cluster
from tempo.memory.errors import (
    ClusterUnsupportedError,
    InvalidRuleError,
    InvalidTimeError,
    UnknownAlertError,
    UnknownRuleError,
    redis_errors,
)
from tempo.memory.store import RedisMemoryStore

EVENTS_MAXLEN = 100_000  # entries kept in the event stream (approximate trimming)
HISTORY_MAXLEN = 4096  # scores kept per rule and stream for --enter auto (> 1 h of 4 s segments)

# KEYS: stream info, rule state, events stream, alert time index, verify set, then one alert hash per
#       event, then one history list per history value.
# ARGV: index ("i" or "i+"), events maxlen, history maxlen, #states, #events, #history, then (rule id, state JSON |
#       '' to delete) per state, then per event (kind, id, webhook, zscore, #fields, field/value pairs),
#       then the history values.
# Returns 1 when applied, 0 when the segment was not just written (refused, or a re-put).
_APPLY = """#!lua
-- ARGV[1] "i": segment i was just written (committed = i); "i+": written with a work-queue landing
-- in this transaction, which may have committed later ones too (committed >= i).
local through = string.sub(ARGV[1], -1) == '+'
local index = tonumber(through and string.sub(ARGV[1], 1, -2) or ARGV[1])
local committed = tonumber(redis.call('HGET', KEYS[1], 'committed') or '-2')
if committed ~= index and not (through and committed > index) then return 0 end
local at = tonumber(redis.call('HGET', KEYS[2], '@') or '-1')
if at >= index then return 0 end
redis.call('HSET', KEYS[2], '@', index)
local ns, ne, nh = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local a = 7
for j = 1, ns do
  if ARGV[a + 1] == '' then redis.call('HDEL', KEYS[2], ARGV[a])
  else redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 1]) end
  a = a + 2
end
for j = 1, ne do
  local kind, id, hook, score, nf = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], tonumber(ARGV[a + 4])
  a = a + 5
  local key = KEYS[5 + j]
  for f = 1, nf do
    redis.call('HSET', key, ARGV[a], ARGV[a + 1])
    a = a + 2
  end
  if kind == 'opened' then
    redis.call('ZADD', KEYS[4], score, id)
    if redis.call('HGET', key, 'verify') == '"pending"' then redis.call('SADD', KEYS[5], id) end
  end
  local entry = {'event', kind, 'webhook', hook}
  local all = redis.call('HGETALL', key)
  for i = 1, #all do entry[#entry + 1] = all[i] end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(entry))
end
for j = 1, nh do
  local key = KEYS[5 + ne + j]
  redis.call('RPUSH', key, ARGV[a])
  redis.call('LTRIM', key, -tonumber(ARGV[3]), -1)
  a = a + 1
end
return 1
"""

# KEYS: alert hash, events stream, verify set. ARGV: events maxlen, id, verified JSON, explanation JSON,
# webhook. Applies once: the id leaves the verify set (a second verifier of the same alert no-ops).
_VERIFY = """#!lua
if redis.call('SREM', KEYS[3], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'verify', '"done"', 'verified', ARGV[3], 'explanation', ARGV[4])
local entry = {'event', 'verified', 'webhook', ARGV[5]}
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all do entry[#entry + 1] = all[i] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', unpack(entry))
return 1
"""


@dataclass(frozen=True)
class Rule:
    """A standing question on a stream. Thresholds are relevance scores in [0, 1]; None = auto."""

    id: str
    stream: str
    text: str
    enter: float | None = 0.8  # None: rolling baseline (see agent/monitoring/episodes.py)
    exit: float | None = None  # None: enter − 0.3 for a fixed enter, baseline + 1 σ for auto
    min_segments: int = 2
    cooldown: float = 60.0  # seconds of stream time after a close before another episode may open
    verify: bool = False
    webhook: str | None = None
    created: float = 0.0  # Unix seconds

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["enter"] = "auto" if self.enter is None else self.enter
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Rule:
        data = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        data["enter"] = None if data.get("enter") == "auto" else data.get("enter")
        return cls(**data)


_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_since(value: str, now: float | None = None) -> float:
    """Unix seconds from `1764160000`, an ISO 8601 time (`2026-11-26T08:00`, local time unless it has an
    offset) or a duration back from now (`30m`, `12h`, `2d`)."""
    now = time.time() if now is None else now
    text = value.strip()
    match = _RELATIVE.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT[match.group(2)]
    try:
        number = float(text)
    except ValueError:
        number = None
    if number is not None and math.isfinite(number) and 0 <= number <= 1e10:
        return number
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise InvalidTimeError(
            f"since {value!r} is not a time: use Unix seconds, an ISO 8601 time or a duration such as 30m, 12h, 2d"
        ) from None


def _finite(name: str, value: float, lo: float, hi: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidRuleError(f"--{name} must be a finite number, not {value!r}")
    if not lo <= value <= hi:
        raise InvalidRuleError(f"--{name} must be between {lo:g} and {hi:g}, not {value:g}")
    return float(value)


def validate_rule(rule: Rule) -> Rule:
    """The rule as stored, or InvalidRuleError saying what is wrong in one sentence."""
    RedisMemoryStore.check_name(rule.stream)
    text = " ".join(rule.text.split())
    if not text:
        raise InvalidRuleError("the rule text is empty; write the standing question, e.g. 'a person climbs the fence'")
    if len(text) > MAX_RULE_TEXT:
        raise InvalidRuleError(f"the rule text has {len(text)} characters; at most {MAX_RULE_TEXT} are allowed")
    enter = None if rule.enter is None else _finite("enter", rule.enter, 0.0, 1.0)
    exit_ = None if rule.exit is None else _finite("exit", rule.exit, 0.0, 1.0)
    if enter is not None and exit_ is not None and exit_ > enter:
        raise InvalidRuleError(f"--exit {exit_:g} is above --enter {enter:g}; an episode closes below exit")
    if (
        isinstance(rule.min_segments, bool)
        or not isinstance(rule.min_segments, int)
        or not 1 <= rule.min_segments <= MAX_MIN_SEGMENTS
    ):
        raise InvalidRuleError(
            f"--min-segments must be a whole number from 1 to {MAX_MIN_SEGMENTS}, not {rule.min_segments!r}"
        )
    cooldown = _finite("cooldown", rule.cooldown, 0.0, MAX_COOLDOWN)
    if rule.webhook is not None:
        parts = urlsplit(rule.webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRuleError(f"--webhook must be an http:// or https:// URL, not {rule.webhook!r}")
    return Rule(
        id=rule.id,
        stream=rule.stream,
        text=text,
        enter=enter,
        exit=exit_,
        min_segments=rule.min_segments,
        cooldown=cooldown,
        verify=bool(rule.verify),
        webhook=rule.webhook,
        created=rule.created,
    )


@dataclass
class RuleCommit:
    """What monitoring commits with one segment: rule states, score history, alert events."""

    stream: str
    index: int
    states: dict[str, str | None] = field(default_factory=dict)  # rule id → state JSON (None: delete)
    through: bool = False  # applied with a work-queue landing (see the module docstring)
    history: dict[str, str] = field(default_factory=dict)  # rule id → "start score"
    # (kind, alert fields (JSON-able values), webhook URL or None)
    events: list[tuple[str, dict[str, Any], str | None]] = field(default_factory=list)


def _field_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def parse_alert(raw: dict[bytes, bytes]) -> dict[str, Any]:
    """An alert hash (or event entry) with JSON values → a dict of Python values."""
    out: dict[str, Any] = {}
    for k, v in raw.items():
        key = k.decode()
        if key in ("event", "webhook"):
            out[key] = v.decode() or None
        else:
            out[key] = json.loads(v)
    return out


class AlertStore:
    """Rules, rule state and alerts of one memory (same Redis and prefix as its RedisMemoryStore)."""

    def __init__(self, client: redis.Redis, *, prefix: str = "tempo") -> None:
        self.client = client
        self.prefix = prefix
        self._apply = client.register_script(_APPLY)
        self._verify = client.register_script(_VERIFY)

    @classmethod
    def of(cls, store: RedisMemoryStore) -> AlertStore:
        return cls(store.client, prefix=store.prefix)

    # ---- keys -------------------------------------------------------------------------------
    @property
    def k_events(self) -> str:
        return f"{self.prefix}:alerts:events"

    def _k_rules(self) -> str:
        return f"{self.prefix}:rules"

    def _k_version(self) -> str:
        return f"{self.prefix}:rules:version"

    def _k_state(self, stream: str) -> str:
        return f"{self.prefix}:s:{{{stream}}}:rs"

    def k_rule_state(self, stream: str) -> str:
        return self._k_state(stream)

    def k_staged_scores(self, stream: str) -> str:
        return f"{self.prefix}:s:{{{stream}}}:rsc"

    def _k_history(self, stream: str, rule: str) -> str:
        return f"{self.prefix}:s:{{{stream}}}:rh:{rule}"

    def _k_alert(self, alert_id: str) -> str:
        return f"{self.prefix}:alert:{alert_id}"

    def _k_index(self) -> str:
        return f"{self.prefix}:alerts:t"

    def _k_verify(self) -> str:
        return f"{self.prefix}:alerts:verify"

    # ---- rules --------------------------------------------------------------------------------
    @redis_errors
    def add_rule(self, rule: Rule) -> Rule:
        """Store a new rule (its id assigned here) and bump the version a running ingest watches."""
        self._refuse_on_cluster()
        rule = validate_rule(rule)  # before an id is spent on it
        number = int(self.client.incr(f"{self.prefix}:rules:seq"))
        rule = Rule(**{**asdict(rule), "id": f"r{number}", "created": time.time()})
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self._k_rules(), rule.id, json.dumps(rule.to_json()))
        pipe.incr(self._k_version())
        pipe.execute()
        return rule

    @redis_errors
    def remove_rule(self, rule_id: str) -> Rule:
        rule = self.get_rule(rule_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self._k_rules(), rule_id)
        pipe.incr(self._k_version())
        pipe.execute()
        return rule

    @redis_errors
    def get_rule(self, rule_id: str) -> Rule:
        raw = self.client.hget(self._k_rules(), rule_id)
        if raw is None:
            known = sorted(k.decode() for k in self.client.hkeys(self._k_rules()))
            raise UnknownRuleError(f"no rule {rule_id!r}; rules: {', '.join(known) if known else 'none'}")
        return Rule.from_json(json.loads(raw))

    @redis_errors
    def rules(self, stream: str | None = None) -> list[Rule]:
        """Rules (of `stream`, or all), ordered by id number."""
        rules = [Rule.from_json(json.loads(v)) for v in self.client.hvals(self._k_rules())]
        if stream is not None:
            rules = [r for r in rules if r.stream == stream]
        return sorted(rules, key=lambda r: int(r.id[1:]))

    @redis_errors
    def rules_version(self) -> int:
        return int(self.client.get(self._k_version()) or 0)

    # ---- rule state -----------------------------------------------------------------------------
    @redis_errors
    def load_state(self, stream: str) -> tuple[int, dict[str, str]]:
        """(last segment index applied, -1 if none; rule id → state JSON)."""
        raw = {k.decode(): v.decode() for k, v in self.client.hgetall(self._k_state(stream)).items()}
        at = int(raw.pop("@", -1))
        return at, raw

    @redis_errors
    def history(self, stream: str, rule_id: str) -> list[tuple[float, float]]:
        """(segment start seconds, score) of the last HISTORY_MAXLEN segments, oldest first."""
        out = []
        for item in self.client.lrange(self._k_history(stream, rule_id), 0, -1):
            t, s = item.split()
            out.append((float(t), float(s)))
        return out

    def delete_history(self, stream: str, rule_id: str) -> None:
        self.client.delete(self._k_history(stream, rule_id))

    def _refuse_on_cluster(self) -> None:
        if is_cluster(self.client):
            raise ClusterUnsupportedError(
                "monitoring rules need a single Redis server (or Sentinel): on a Redis Cluster an alert's "
                "keys and its stream's keys live on different shards, which one atomic commit cannot span"
            )

    def commit_rules(self, commit: RuleCommit) -> Callable[[Any], None]:
        """A function that queues this commit's script on a pipeline (after the segment's own put)."""
        self._refuse_on_cluster()

        def queue(pipe: Any) -> None:
            keys = [
                f"{self.prefix}:s:{{{commit.stream}}}:info",
                self._k_state(commit.stream),
                self.k_events,
                self._k_index(),
                self._k_verify(),
            ]
            args: list[Any] = [
                f"{commit.index}+" if commit.through else commit.index,
                EVENTS_MAXLEN,
                HISTORY_MAXLEN,
                len(commit.states),
                len(commit.events),
                len(commit.history),
            ]
            for rule_id, state in commit.states.items():
                args += [rule_id, state or ""]
            for kind, alert, webhook in commit.events:
                keys.append(self._k_alert(alert["id"]))
                fields = [x for k, v in alert.items() for x in (k, _field_json(v))]
                args += [kind, alert["id"], webhook or "", repr(float(alert["opened_at"])), len(fields) // 2, *fields]
            for rule_id, value in commit.history.items():
                keys.append(self._k_history(commit.stream, rule_id))
                args.append(value)
            self._apply(keys=keys, args=args, client=pipe)

        return queue

    # ---- alerts ---------------------------------------------------------------------------------
    @redis_errors
    def alert(self, alert_id: str) -> dict[str, Any]:
        raw = self.client.hgetall(self._k_alert(alert_id))
        if not raw:
            raise UnknownAlertError(f"no alert {alert_id!r}; list them with `tempo alerts`")
        return parse_alert(raw)

    @redis_errors
    def alerts(
        self, stream: str | None = None, *, since: float | None = None, until: float | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Alerts opened within [since, until] (Unix seconds), oldest first, at most `limit` (the newest)."""
        lo = "-inf" if since is None else repr(float(since))
        hi = "+inf" if until is None else repr(float(until))
        ids = [i.decode() for i in self.client.zrangebyscore(self._k_index(), lo, hi)]
        if stream is not None:
            ids = [i for i in ids if i.split(":", 1)[0] == stream]
        ids = ids[-limit:] if limit else ids
        pipe = self.client.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self._k_alert(i))
        return [parse_alert(raw) for raw in pipe.execute() if raw]

    @redis_errors
    def ack(self, alert_id: str) -> dict[str, Any]:
        """Mark an alert acknowledged (kept; `acked` is the Unix time of the first ack)."""
        self.alert(alert_id)
        self.client.hsetnx(self._k_alert(alert_id), "acked", _field_json(round(time.time(), 3)))
        return self.alert(alert_id)

    @redis_errors
    def pending_verifications(self, stream: str) -> list[str]:
        """Ids of `stream`'s alerts whose --verify answer is still owed (e.g. after a crash)."""
        ids = sorted(i.decode() for i in self.client.smembers(self._k_verify()))
        return [i for i in ids if i.split(":", 1)[0] == stream]

    @redis_errors
    def record_verification(self, alert_id: str, verified: bool | None, explanation: str, webhook: str | None) -> bool:
        """Store the verifier's answer on the alert and append a `verified` event (once per alert)."""
        done = self._verify(
            keys=[self._k_alert(alert_id), self.k_events, self._k_verify()],
            args=[EVENTS_MAXLEN, alert_id, _field_json(verified), _field_json(explanation), webhook or ""],
        )
        return bool(done)

    @redis_errors
    def events(
        self, after: str = "0-0", *, count: int = 1000, block_ms: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Events after stream id `after` ('$' for only new ones), oldest first: (entry id, fields)."""
        got = self.client.xread({self.k_events: after}, count=count, block=block_ms)
        out = []
        for _, entries in got or []:
            for entry_id, raw in entries:
                out.append((entry_id.decode(), parse_alert(raw)))
        return out

    @redis_errors
    def latest_event_id(self) -> str:
        """The id of the newest event ('0-0' when there is none): reading after it gives only new events
        (unlike XREAD's '$', which a loop of reads cannot reuse without losing events between them)."""
        last = self.client.xrevrange(self.k_events, count=1)
        return last[0][0].decode() if last else "0-0"

    def follow(self, after: str = "$", *, block_ms: int = 1000) -> Iterator[tuple[str, dict[str, Any]]]:
        """Events as they are appended, forever (Ctrl-C to stop)."""
        if after == "$":
            after = self.latest_event_id()
        while True:
            for entry_id, event in self.events(after, block_ms=block_ms):
                after = entry_id
                yield entry_id, event


def delivery_key(event: dict[str, Any]) -> str:
    return event["id"] if event["event"] == "opened" else f"{event['id']}#{event['event']}"
