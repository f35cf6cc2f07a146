"""The ways in: the `tempo` CLI, the HTTP server with its web console, the MCP server, LangChain tools.

Owns: the CLI and its commands (cli.py, commands/), `tempo serve` (server.py with its sources policy,
clips and ingest jobs in server_*.py, the console in static/), the HTTP guard shared by `tempo serve`
and `tempo mcp --http` (http_security.py: tokens, Host/Origin, metrics), the MCP server (mcp_server.py),
the LangChain tools (langchain_tools.py), starting a server subprocess on loopback for benchmarks,
tests and scripts (launch.py), and the errors only these can raise (errors.py). It is the
last stage: it may import every other one (`tempo.service` included); nothing imports it.
"""
