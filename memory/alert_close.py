"""The end of a source closes the rule episodes still open (tempo.agent.monitoring.monitor.RuleMonitor.
source_ended): their alert events and rule states in one script, applied only while the stream's last
committed segment is the one the states were applied at and the states are as the caller read them,
so a second close (a rerun of a finished file) or an ingest that went on meanwhile writes nothing. The
events go through the stream's outbox and relay, as every alert event does (memory/alerts.py)."""

from __future__ import annotations

import weakref
from typing import Any

from tempo.memory.alerts import AlertStore, RuleCommit, _field_json
from tempo.memory.cluster import Script
from tempo.memory.errors import redis_errors

# KEYS: stream info, rule state, outbox. ARGV: index, #states, then (rule id, state JSON, expected
#       old state JSON) per state, then per event (kind, webhook, #fields, field/value pairs).
# The end of a source: applies only while segment `index` is the last committed and the rule states
# were last applied at it and are still as the caller read them (a second close, or an ingest that
# went on meanwhile, no-ops). Outbox ids "<index>-*" follow that segment's own events.
_CLOSE_AT_END = """#!lua
local index = tonumber(ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'committed') or '-2') ~= index then return 0 end
if tonumber(redis.call('HGET', KEYS[2], '@') or '-1') ~= index then return 0 end
local ns = tonumber(ARGV[2])
local a = 3
for j = 1, ns do
  if redis.call('HGET', KEYS[2], ARGV[a]) ~= ARGV[a + 2] then return 0 end
  a = a + 3
end
a = 3
for j = 1, ns do
  redis.call('HSET', KEYS[2], ARGV[a], ARGV[a + 1])
  a = a + 3
end
while a <= #ARGV do
  local entry = {'event', ARGV[a], 'webhook', ARGV[a + 1]}
  local nf = tonumber(ARGV[a + 2])
  a = a + 3
  for f = 1, 2 * nf do
    entry[#entry + 1] = ARGV[a]
    a = a + 1
  end
  redis.call('XADD', KEYS[3], ARGV[1] .. '-*', unpack(entry))
end
return 1
"""

_SCRIPTS: weakref.WeakKeyDictionary[Any, Script] = weakref.WeakKeyDictionary()


def _script(alerts: AlertStore) -> Script:
    script = _SCRIPTS.get(alerts.client)
    if script is None:
        script = _SCRIPTS[alerts.client] = Script(alerts.client, _CLOSE_AT_END)
    return script


@redis_errors
def close_at_end(alerts: AlertStore, commit: RuleCommit, old_states: dict[str, str]) -> bool:
    """Commit the closes of a source's end (`commit.index`: its last segment; `commit.states`: the
    rule states after them, `old_states` as they were read) and relay them. False when the stream
    moved on meanwhile or another close came first (nothing written)."""
    keys = [alerts._stream_keys.info(commit.stream), alerts.keys.rule_state(commit.stream),
            alerts.keys.outbox(commit.stream)]
    args: list[Any] = [commit.index, len(commit.states)]
    for rule_id, state in commit.states.items():
        args += [rule_id, state or "", old_states[rule_id]]
    for kind, alert, webhook in commit.events:
        fields = [x for k, v in alert.items() for x in (k, _field_json(v))]
        args += [kind, webhook or "", len(fields) // 2, *fields]
    if not int(_script(alerts)(keys=keys, args=args)):
        return False
    alerts.relay(commit.stream)
    return True
