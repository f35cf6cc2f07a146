"""Live monitoring (issue 11): standing questions (rules) on streams, episodes, verified alerts, delivery.

- `episodes`: the hysteresis of one rule (scores → episodes) and the `--enter auto` baseline;
- `monitor`: `RuleMonitor`, the rules of a stream applied to each segment an ingest commits;
- `verify`: the `--verify` question, asked through the memory answer path (`Conversations.ask_once`);
- `ingest`: `monitored_ingest`, an ingest with the stream's rules and webhook delivery;
- `webhooks`: `WebhookDeliverer`, the consumer group that posts alert events to rules' webhooks.
Storage (rule book, rule state, alert log) is `tempo.memory.alerts`.
"""
