"""docker-compose.yml checked without a Docker engine: a JSON schema of the Compose specification's
parts this file uses (service keys, restart policies, depends_on conditions, profiles, healthcheck,
GPU reservations), validated with `jsonschema`, plus what the deployment promises in the README."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]

_STRINGS = {"type": "array", "items": {"type": "string"}}
_ENV = {
    "oneOf": [
        {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean", "null"]}},
        _STRINGS,
    ]
}
_GPU = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "driver": {"type": "string"},
        "count": {"oneOf": [{"type": "integer", "minimum": 1}, {"const": "all"}]},
        "capabilities": _STRINGS,
        "device_ids": _STRINGS,
    },
    "required": ["capabilities"],
}
SERVICE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "image": {"type": "string"},
        "build": {
            "oneOf": [
                {"type": "null"},  # `!reset null`: this service uses the image another one builds
                {"type": "string"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "context": {"type": "string"},
                        "dockerfile": {"type": "string"},
                        "dockerfile_inline": {"type": "string"},
                        "args": _ENV,
                    },
                },
            ]
        },
        "command": {"oneOf": [{"type": "string"}, _STRINGS]},
        "environment": _ENV,
        "volumes": _STRINGS,
        "ports": _STRINGS,
        "profiles": {"type": "array", "items": {"type": "string", "pattern": "^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"}},
        "restart": {"type": "string", "pattern": "^(no|always|unless-stopped|on-failure(:[0-9]+)?)$"},
        "stop_grace_period": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
        "depends_on": {
            "oneOf": [
                _STRINGS,
                {
                    "type": "object",
                    "additionalProperties": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "condition": {
                                "enum": ["service_started", "service_healthy", "service_completed_successfully"]
                            },
                            "restart": {"type": "boolean"},
                            "required": {"type": "boolean"},
                        },
                        "required": ["condition"],
                    },
                },
            ]
        },
        "healthcheck": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "test": {"oneOf": [{"type": "string"}, _STRINGS]},
                "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                "timeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                "retries": {"type": "integer", "minimum": 0},
                "start_period": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
            },
        },
        "deploy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "replicas": {"type": "integer", "minimum": 0},
                "resources": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "reservations": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"devices": {"type": "array", "items": _GPU}},
                        }
                    },
                },
            },
        },
    },
    "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
}
COMPOSE = {
    "type": "object",
    "additionalProperties": False,
    "patternProperties": {"^x-": {}},
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]*$"},
        "services": {"type": "object", "minProperties": 1, "additionalProperties": SERVICE},
        "volumes": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
    },
    "required": ["services"],
}


class _ComposeLoader(yaml.SafeLoader):
    """YAML with Compose's `!reset` tag (drop an inherited value)."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: None)


def compose() -> dict:
    return yaml.load((ROOT / "docker-compose.yml").read_text(), Loader=_ComposeLoader)


def test_compose_file_fits_the_compose_schema() -> None:
    jsonschema.validate(compose(), COMPOSE)


def test_plain_up_needs_no_source_and_workers_are_profiles() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r"\$\{TEMPO_(SOURCE|VIDEO|STREAM):\?", text)  # no variable is required to start
    services = compose()["services"]
    default = {name for name, s in services.items() if not s.get("profiles")}
    assert default == {"redis", "tempo"}
    assert services["ingest-file"]["restart"] == "on-failure"
    assert services["ingest"]["restart"] in ("always", "unless-stopped")
    # Scale-out: queue workers serve every stream (no source of their own) and come back when stopped.
    assert services["producer"]["profiles"] == services["worker"]["profiles"] == ["scale"]
    assert services["worker"]["restart"] in ("always", "unless-stopped")
    assert not {"TEMPO_SOURCE", "TEMPO_VIDEO", "TEMPO_STREAM"} & set(services["worker"]["environment"])
    assert "--queue" in services["producer"]["command"][-1]


def test_one_image_is_built_once_with_the_gpu_extra_and_a_clean_context() -> None:
    services = compose()["services"]
    builders = [name for name, s in services.items() if s.get("build")]
    assert builders == ["tempo"]
    assert "[gpu]" in services["tempo"]["build"]["dockerfile_inline"]
    assert {s["image"] for n, s in services.items() if n != "redis"} == {services["tempo"]["image"]}
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored)


def test_input_videos_are_mounted_where_the_readme_says() -> None:
    services = compose()["services"]
    assert "./videos:/videos:ro" in services["ingest-file"]["volumes"]
    assert services["ingest-file"]["environment"]["TEMPO_VIDEO"].startswith("${TEMPO_VIDEO:-/videos/")
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "a file under `./videos`, which is mounted at `/videos`" in readme
