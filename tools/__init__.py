"""The ways in: the `tempo` CLI, the HTTP server with its web console, the MCP server, LangChain tools.

Owns: the CLI and its commands (cli.py, commands/); `tempo serve`: server.py (its settings, the
objects behind the routes and the wiring) with one router per resource — server_streams.py,
server_jobs.py (ingest jobs and their routes), server_questions.py (ask and threads), server_search.py,
server_alerts.py (rules and alerts), server_clips.py, server_status.py (/health, /metrics),
server_console.py (the console in static/) — plus server_problems.py (errors as problem documents, the
status code by error category), server_sse.py, server_sources.py (the sources policy) and
model_queue.py (admission to the model); what `tempo serve` shares with `tempo mcp --http`: the HTTP
guard (http_security.py: tokens, Host/Origin) and the Prometheus metrics (http_metrics.py); the MCP
server (mcp_server.py), the LangChain tools (langchain_tools.py), starting a server subprocess on
loopback for benchmarks, tests and scripts (launch.py), and the errors only these can raise (errors.py,
each under its category in tempo.errors). It is the last stage: it may import every other one
(`tempo.service` included); nothing imports it.
"""
