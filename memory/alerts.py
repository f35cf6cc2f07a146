"""Monitoring in Redis (issue 11): the rule book, rule state committed with its segment, the alert log.

Key layout (prefix `tempo`; `{name}` is the stream's hash tag, as in store.py; memory/keys.py's
`MonitoringKeys` builds every name). The deployment-wide keys (the rule book and the alert log) are
named as below on one Redis server; on a Redis Cluster they share the hash tag `{tempo}`
(`{tempo}:rules`, `{tempo}:alert:{id}`, ...) so each transaction or script on them stays in one slot:

    tempo:rules                  HASH   rule id → rule JSON
    tempo:rules:seq              STRING counter for rule ids (r1, r2, ...; never reused)
    tempo:rules:version          STRING bumped by every add/remove: a running ingest re-reads the rules
                                        when it moves (one GET per batch)
    tempo:s:{name}:rs            HASH   rule id → hysteresis state JSON; '@' → last segment applied
    tempo:s:{name}:rh:{rule}     LIST   "start score" per segment, newest last (for --enter auto)
    tempo:s:{name}:rsc           HASH   work-queue job number → its rule scores, staged while the job
                                        waits for its predecessors (see engine/worker.py)
    tempo:s:{name}:ao            STREAM the stream's alert outbox: events committed with their segment,
                                        not yet relayed to the alert log; entry id "<segment>-<n>"
    tempo:alert:{id}             HASH   the alert's fields, each a JSON value (latest version)
    tempo:alerts:t               ZSET   alert id, score opened_at (Unix seconds)
    tempo:alerts:events          STREAM one entry per opened / verified / closed event (bounded)
    tempo:alerts:verify          SET    ids of alerts waiting for their --verify answer
    tempo:alerts:relayed         HASH   stream number → id of the last outbox entry relayed
    tempo:alerts:outboxes        SET    names of the streams that ever had a rule (whose outboxes a
                                        reader sweeps)

Atomicity: a transactional outbox, the same on one server and on a cluster. The writer of a stream
commits each segment by `RedisMemoryStore.put_segments` and, in the same MULTI/EXEC, the segment's
rule commit (`commit_rules`, one script in the stream's slot): rule states, score history and the
alert events (each with its webhook and the alert's fields) appended to the stream's outbox land
together with the segment or not at all. The script applies only when that very segment was just
written (`committed` = its index and the state's '@' is older), so a re-put after a crash changes
nothing. A work-queue worker (engine/worker.py) lands a job that may commit several segments at once
(its own and staged successors): it steps the rules over all of them and commits each one's rule
script "through" (`committed` ≥ its index, '@' older) in the same MULTI/EXEC as the landing.

Then `relay(stream)` moves the outbox into the alert log: one script in the alert log's slot applies
the entries in order (alert hash, time index, verify set, event stream) and records the last entry id
applied per stream (by stream number: a re-created stream of the same name starts afresh); entries
at or below it are skipped, so two relayers racing, or a relayer that died after its script and
before trimming the outbox, apply each event once; then the relayed entries leave the outbox. Who
relays: the committer, right after a commit that had events (`RuleMonitor.committed` in an ingest,
`RuleMonitor.landed` in a worker); a monitor starting on a stream (stragglers of a committer killed
between its commit and its relay) and a worker starting (`sweep`); and every reader of the alert log
(`alerts`, `events`, `follow`, the webhook deliverer, and so `tempo alerts` and serve's routes)
through `sweep`: one round trip for the streams that ever had rules, one pipelined XLEN of their
outboxes, and a relay only where one is not empty (`alert` and the owed verifications, which concern
one stream, look at its outbox in the same round trip as their read). So a reader sees every
committed event, exactly once and in each stream's order.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import redis
from tempo.errors import redact_url
from tempo.inputs import MAX_COOLDOWN, MAX_MIN_SEGMENTS, MAX_RULE_TEXT
from tempo.memory.cluster import Script, is_cluster
from tempo.memory.errors import (
    InvalidRuleError,
    InvalidTimeError,
    UnknownAlertError,
    UnknownRuleError,
    redis_errors,
)
from tempo.memory.keys import MonitoringKeys, StreamKeys
from tempo.memory.store import RedisMemoryStore
from tempo.memory.webhook_url import check_webhook_url

EVENTS_MAXLEN = 100_000  # entries kept in the event stream (approximate trimming)
HISTORY_MAXLEN = 4096  # scores kept per rule and stream for --enter auto (> 1 h of 4 s segments)
RELAY_BATCH = 256  # outbox entries relayed per script

# KEYS: stream info, rule state, outbox, then one history list per history value.
# ARGV: index ("i" or "i+"), history maxlen, #states, #events, #history, then (rule id, state JSON |
#       '' to delete) per state, then per event (kind, webhook, #fields, field/value pairs), then the
#       history values.
# Returns 1 when applied, 0 when the segment was not just written (refused, or a re-put).
_APPLY = """#!lua
-- ARGV[1] "i": segment i was just written (committed = i); "i+": written with a work-queue landing
-- in this transaction, which may have committed later ones too (committed >= i).
local through = string.sub(ARGV[1], -1) == '+'
local digits = through and string.sub(ARGV[1], 1, -2) or ARGV[1]
local index = tonumber(digits)
local committed = tonumber(redis.call('HGET', KEYS[1], 'committed') or '-2')
if committed ~= index and not (through and committed > index) then return 0 end
local at = tonumber(redis.call('HGET', KEYS[2], '@') or '-1')
if at >= index then return 0 end
redis.call('HSET', KEYS[2], '@', index)
local ns, ne, nh = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local a = 6
for j = 1, ns do
  if ARGV[a + 1] == '' then redis.call('HDEL', KEYS[2], ARGV[a])
  else redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 1]) end
  a = a + 2
end
-- '@' only grows (above), so "<segment>-<n>" ids only grow too: XADD cannot refuse them.
for j = 1, ne do
  local entry = {'event', ARGV[a], 'webhook', ARGV[a + 1]}
  local nf = tonumber(ARGV[a + 2])
  a = a + 3
  for f = 1, 2 * nf do
    entry[#entry + 1] = ARGV[a]
    a = a + 1
  end
  redis.call('XADD', KEYS[3], digits .. '-' .. j, unpack(entry))
end
for j = 1, nh do
  local key = KEYS[3 + j]
  redis.call('RPUSH', key, ARGV[a])
  redis.call('LTRIM', key, -tonumber(ARGV[2]), -1)
  a = a + 1
end
return 1
"""

# KEYS: relay marks, alert time index, events stream, verify set, then one alert hash per entry.
# ARGV: stream number, events maxlen, #entries, then per entry (outbox id, kind, webhook, alert id,
#       zscore, #fields, field/value pairs), in outbox order.
# Applies the entries after the stream's mark and moves the mark; returns how many it applied.
_RELAY = """#!lua
local function parse(id)
  local x, y = string.match(id, '^(%d+)%-(%d+)$')
  return tonumber(x), tonumber(y)
end
local ma, mb = -1, -1
local mark = redis.call('HGET', KEYS[1], ARGV[1])
if mark then ma, mb = parse(mark) end
local a, applied, last = 4, 0, nil
for j = 1, tonumber(ARGV[3]) do
  local id, kind, hook, alert, score = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local first = a + 6
  a = first + 2 * tonumber(ARGV[a + 5])
  local ea, eb = parse(id)
  if ea > ma or (ea == ma and eb > mb) then
    local key = KEYS[4 + j]
    for f = first, a - 1, 2 do redis.call('HSET', key, ARGV[f], ARGV[f + 1]) end
    if kind == 'opened' then
      redis.call('ZADD', KEYS[2], score, alert)
      if redis.call('HGET', key, 'verify') == '"pending"' then redis.call('SADD', KEYS[4], alert) end
    end
    local entry = {'event', kind, 'webhook', hook}
    local all = redis.call('HGETALL', key)
    for i = 1, #all do entry[#entry + 1] = all[i] end
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', unpack(entry))
    ma, mb, last, applied = ea, eb, id, applied + 1
  end
end
if last then redis.call('HSET', KEYS[1], ARGV[1], last) end
return applied
"""

# KEYS: stream info, outbox. ARGV: stream number, then the outbox ids relayed.
# Deletes them only while the stream is still that number: a stream deleted and created anew under the
# same name meanwhile has an outbox of its own, whose entries may bear the same ids and are not relayed.
_FORGET = """#!lua
if redis.call('HGET', KEYS[1], 'number') ~= ARGV[1] then return 0 end
return redis.call('XDEL', KEYS[2], unpack(ARGV, 2))
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
        """The rule as stored (the webhook URL whole: delivery needs it)."""
        data = asdict(self)
        data["enter"] = "auto" if self.enter is None else self.enter
        return data

    def shown(self) -> dict[str, Any]:
        """The rule as shown to anyone (CLI, REST): the webhook's credentials and tokens redacted."""
        data = self.to_json()
        data["webhook"] = None if self.webhook is None else redact_url(self.webhook)
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


def validate_rule(rule: Rule, *, deny_private: bool | None = None) -> Rule:
    """The rule as stored, or InvalidRuleError saying what is wrong in one sentence (`deny_private`: see
    `check_webhook_url`)."""
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
        check_webhook_url(rule.webhook, deny_private=deny_private)
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
        self.keys = MonitoringKeys(prefix, cluster=is_cluster(client))
        self._stream_keys = StreamKeys(prefix)
        self._apply = Script(client, _APPLY)
        self._relay = Script(client, _RELAY)
        self._verify = Script(client, _VERIFY)
        self._forget = Script(client, _FORGET)

    @classmethod
    def of(cls, store: RedisMemoryStore) -> AlertStore:
        return cls(store.client, prefix=store.prefix)

    # ---- keys the work queue and the webhook deliverer use -----------------------------------------
    @property
    def k_events(self) -> str:
        return self.keys.events()

    def k_rule_state(self, stream: str) -> str:
        return self.keys.rule_state(stream)

    def k_staged_scores(self, stream: str) -> str:
        return self.keys.staged_scores(stream)

    # ---- rules --------------------------------------------------------------------------------
    @redis_errors
    def add_rule(self, rule: Rule, *, deny_private: bool | None = None) -> Rule:
        """Store a new rule (its id assigned here) and bump the version a running ingest watches
        (`deny_private`: see `check_webhook_url`)."""
        rule = validate_rule(rule, deny_private=deny_private)  # before an id is spent on it
        number = int(self.client.incr(self.keys.rules_seq()))
        rule = Rule(**{**asdict(rule), "id": f"r{number}", "created": time.time()})
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.keys.rules(), rule.id, json.dumps(rule.to_json()))
        pipe.incr(self.keys.rules_version())
        pipe.sadd(self.keys.outboxes(), rule.stream)  # swept for good: a removed rule still closes its episode
        pipe.execute()
        return rule

    @redis_errors
    def remove_rule(self, rule_id: str) -> Rule:
        rule = self.get_rule(rule_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.keys.rules(), rule_id)
        pipe.incr(self.keys.rules_version())
        pipe.execute()
        return rule

    @redis_errors
    def get_rule(self, rule_id: str) -> Rule:
        raw = self.client.hget(self.keys.rules(), rule_id)
        if raw is None:
            known = sorted(k.decode() for k in self.client.hkeys(self.keys.rules()))
            raise UnknownRuleError(f"no rule {rule_id!r}; rules: {', '.join(known) if known else 'none'}")
        return Rule.from_json(json.loads(raw))

    @redis_errors
    def rules(self, stream: str | None = None) -> list[Rule]:
        """Rules (of `stream`, or all), ordered by id number."""
        rules = [Rule.from_json(json.loads(v)) for v in self.client.hvals(self.keys.rules())]
        if stream is not None:
            rules = [r for r in rules if r.stream == stream]
        return sorted(rules, key=lambda r: int(r.id[1:]))

    @redis_errors
    def rules_version(self) -> int:
        return int(self.client.get(self.keys.rules_version()) or 0)

    # ---- rule state -----------------------------------------------------------------------------
    @redis_errors
    def load_state(self, stream: str) -> tuple[int, dict[str, str]]:
        """(last segment index applied, -1 if none; rule id → state JSON)."""
        raw = {k.decode(): v.decode() for k, v in self.client.hgetall(self.keys.rule_state(stream)).items()}
        at = int(raw.pop("@", -1))
        return at, raw

    @redis_errors
    def history(self, stream: str, rule_id: str) -> list[tuple[float, float]]:
        """(segment start seconds, score) of the last HISTORY_MAXLEN segments, oldest first."""
        out = []
        for item in self.client.lrange(self.keys.history(stream, rule_id), 0, -1):
            t, s = item.split()
            out.append((float(t), float(s)))
        return out

    def delete_history(self, stream: str, rule_id: str) -> None:
        self.client.delete(self.keys.history(stream, rule_id))

    def commit_rules(self, commit: RuleCommit) -> Callable[[Any], None]:
        """A function that queues this commit's script on a pipeline (after the segment's own put).
        Its events go to the stream's outbox; `relay` moves them to the alert log once committed."""

        def queue(pipe: Any) -> None:
            keys = [self._stream_keys.info(commit.stream), self.keys.rule_state(commit.stream),
                    self.keys.outbox(commit.stream)]
            args: list[Any] = [
                f"{commit.index}+" if commit.through else commit.index,
                HISTORY_MAXLEN,
                len(commit.states),
                len(commit.events),
                len(commit.history),
            ]
            for rule_id, state in commit.states.items():
                args += [rule_id, state or ""]
            for kind, alert, webhook in commit.events:
                fields = [x for k, v in alert.items() for x in (k, _field_json(v))]
                args += [kind, webhook or "", len(fields) // 2, *fields]
            for rule_id, value in commit.history.items():
                keys.append(self.keys.history(commit.stream, rule_id))
                args.append(value)
            self._apply(keys=keys, args=args, client=pipe)

        return queue

    def close_at_end(self, commit: RuleCommit, old_states: dict[str, str]) -> bool:
        """Commit the closes of a source's end and relay them (tempo.memory.alert_close)."""
        from tempo.memory.alert_close import close_at_end

        return close_at_end(self, commit, old_states)

    # ---- the outbox relay ---------------------------------------------------------------------------
    @redis_errors
    def relay(self, stream: str) -> int:
        """Move `stream`'s committed alert events from its outbox into the alert log, in order, each
        exactly once (see the module docstring); returns how many this call applied."""
        outbox = self.keys.outbox(stream)
        applied = 0
        while True:
            pipe = self.client.pipeline(transaction=False)  # both in the stream's slot
            pipe.hget(self._stream_keys.info(stream), "number")
            pipe.xrange(outbox, count=RELAY_BATCH)
            number, entries = pipe.execute()
            if not entries or number is None:  # nothing waits, or the stream is gone (its outbox with it)
                return applied
            keys = [self.keys.relayed(), self.keys.alert_times(), self.keys.events(), self.keys.verify()]
            args: list[Any] = [number, EVENTS_MAXLEN, len(entries)]
            for entry_id, raw in entries:
                fields = dict(raw)
                kind, hook = fields.pop(b"event"), fields.pop(b"webhook")
                alert_id = json.loads(fields[b"id"])
                keys.append(self.keys.alert(alert_id))
                score = repr(float(json.loads(fields[b"opened_at"]))) if kind == b"opened" else "0"
                args += [entry_id, kind, hook, alert_id, score, len(fields), *(x for kv in fields.items() for x in kv)]
            applied += int(self._relay(keys=keys, args=args))
            # Relayed now (by this call or one racing it): the outbox lets them go.
            self._forget(keys=[self._stream_keys.info(stream), outbox],
                         args=[number, *(entry_id for entry_id, _ in entries)])
            if len(entries) < RELAY_BATCH:
                return applied

    @redis_errors
    def sweep(self, streams: Iterable[str] | None = None) -> int:
        """Relay whatever waits in the outboxes of `streams` (default: every stream that has or had a
        rule): one pipelined XLEN, then a relay only where an outbox is not empty. Returns the events
        applied."""
        if streams is None:
            pipe = self.client.pipeline(transaction=False)  # both in the alert log's slot
            pipe.smembers(self.keys.outboxes())
            pipe.hvals(self.keys.rules())  # rules added before the outbox set existed
            named, rules = pipe.execute()
            streams = {n.decode() for n in named} | {json.loads(r)["stream"] for r in rules}
        names = sorted(set(streams))
        if not names:
            return 0
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.xlen(self.keys.outbox(name))
        return sum(self.relay(name) for name, waiting in zip(names, pipe.execute(), strict=True) if waiting)

    # ---- alerts ---------------------------------------------------------------------------------
    def _read_after_relay(self, stream: str, read: Callable[[Any], Any]) -> Any:
        """`read(client_or_pipeline)` queued with a look at `stream`'s outbox (one round trip); when
        something waits there it is relayed first and the read made again."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xlen(self.keys.outbox(stream))
        read(pipe)
        waiting, got = pipe.execute()
        if not waiting:
            return got
        self.relay(stream)
        return read(self.client)

    @redis_errors
    def alert(self, alert_id: str) -> dict[str, Any]:
        stream = alert_id.split(":", 1)[0]  # ids are STREAM:RULE:SEGMENT
        raw = self._read_after_relay(stream, lambda c: c.hgetall(self.keys.alert(alert_id)))
        if not raw:
            raise UnknownAlertError(f"no alert {alert_id!r}; list them with `tempo alerts`")
        return parse_alert(raw)

    @redis_errors
    def alerts(
        self, stream: str | None = None, *, since: float | None = None, until: float | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Alerts opened within [since, until] (Unix seconds), oldest first, at most `limit` (the newest)."""
        self.sweep(None if stream is None else [stream])  # one stream's alerts need only its outbox relayed
        lo = "-inf" if since is None else repr(float(since))
        hi = "+inf" if until is None else repr(float(until))
        ids = [i.decode() for i in self.client.zrangebyscore(self.keys.alert_times(), lo, hi)]
        if stream is not None:
            ids = [i for i in ids if i.split(":", 1)[0] == stream]
        ids = ids[-limit:] if limit else ids
        pipe = self.client.pipeline(transaction=False)
        for i in ids:
            pipe.hgetall(self.keys.alert(i))
        return [parse_alert(raw) for raw in pipe.execute() if raw]

    @redis_errors
    def ack(self, alert_id: str) -> dict[str, Any]:
        """Mark an alert acknowledged (kept; `acked` is the Unix time of the first ack)."""
        self.alert(alert_id)
        self.client.hsetnx(self.keys.alert(alert_id), "acked", _field_json(round(time.time(), 3)))
        return self.alert(alert_id)

    @redis_errors
    def pending_verifications(self, stream: str) -> list[str]:
        """Ids of `stream`'s alerts whose --verify answer is still owed (e.g. after a crash)."""
        owed = self._read_after_relay(stream, lambda c: c.smembers(self.keys.verify()))
        ids = sorted(i.decode() for i in owed)
        return [i for i in ids if i.split(":", 1)[0] == stream]

    @redis_errors
    def record_verification(self, alert_id: str, verified: bool | None, explanation: str, webhook: str | None) -> bool:
        """Store the verifier's answer on the alert and append a `verified` event (once per alert)."""
        done = self._verify(
            keys=[self.keys.alert(alert_id), self.keys.events(), self.keys.verify()],
            args=[EVENTS_MAXLEN, alert_id, _field_json(verified), _field_json(explanation), webhook or ""],
        )
        return bool(done)

    @redis_errors
    def events(
        self, after: str = "0-0", *, count: int = 1000, block_ms: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Events after stream id `after` ('$' for only new ones), oldest first: (entry id, fields)."""
        self.sweep()
        got = self.client.xread({self.keys.events(): after}, count=count, block=block_ms)
        out = []
        for _, entries in got or []:
            for entry_id, raw in entries:
                event = parse_alert(raw)
                if event.get("webhook"):  # shown to readers (tempo alerts --follow, the API): redacted
                    event["webhook"] = redact_url(event["webhook"])
                out.append((entry_id.decode(), event))
        return out

    @redis_errors
    def latest_event_id(self) -> str:
        """The id of the newest event ('0-0' when there is none): reading after it gives only new events
        (unlike XREAD's '$', which a loop of reads cannot reuse without losing events between them)."""
        self.sweep()
        last = self.client.xrevrange(self.keys.events(), count=1)
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
