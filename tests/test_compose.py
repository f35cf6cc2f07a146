"""docker-compose.yml checked two ways: against the Compose Specification's own JSON schema (vendored in
tests/fixtures/compose-spec.json, see tests/fixtures/README.md) with `jsonschema`, and by
`docker compose config` where a Docker CLI with the compose plugin exists. Then what the deployment
promises in the README and what the schema cannot say: profiles, restart policies, one image, the build
context, the mounts, and a `worker` service that `--scale worker=N` can multiply."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCHEMA_FILE = ROOT / "tests" / "fixtures" / "compose-spec.json"
# The git blob id of schema/compose-spec.json in compose-spec/compose-spec that we vendored (see
# tests/fixtures/README.md): the copy must stay byte-identical, so an update is a new vendoring.
SCHEMA_BLOB = "5db97d0fbbb8e7fbedea0bb5fdb3fe0e93b0e4b1"


class _Reset:
    """Compose's `!reset` tag: the attribute is removed from the merged service, as if never set."""


_RESET = _Reset()


class _ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: merge keys (`<<: *anchor`, PyYAML's SafeLoader has them) and `!reset`."""


_ComposeLoader.add_constructor("!reset", lambda loader, node: _RESET)


def _drop_resets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_resets(v) for k, v in value.items() if v is not _RESET}
    if isinstance(value, list):
        return [_drop_resets(v) for v in value if v is not _RESET]
    return value


def load_compose(text: str) -> dict:
    return _drop_resets(yaml.load(text, Loader=_ComposeLoader))


def compose() -> dict:
    return load_compose(COMPOSE_FILE.read_text())


def schema_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    # The schema says draft-07 in a spelling (no trailing '#') that jsonschema does not look up by itself.
    assert schema["$schema"].rstrip("#") == "https://json-schema.org/draft-07/schema"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _with_branches(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """An error and, for a failed oneOf/anyOf, the errors of each branch (they name the bad leaf)."""
    return [error, *(e for sub in error.context or [] for e in _with_branches(sub))]


def schema_errors(document: dict) -> list[str]:
    """Every violation, as 'path: message' (empty when the document fits the specification)."""
    errors = [e for top in schema_validator().iter_errors(document) for e in _with_branches(top)]
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors)


def test_vendored_schema_is_the_unmodified_compose_spec_file() -> None:
    data = SCHEMA_FILE.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # what `git hash-object` prints
    assert blob == SCHEMA_BLOB
    notes = (ROOT / "tests" / "fixtures" / "README.md").read_text()
    assert SCHEMA_BLOB in notes and "Apache-2.0" in notes
    assert "Apache License" in (ROOT / "tests" / "fixtures" / "compose-spec.LICENSE").read_text()


def test_compose_file_fits_the_compose_specification_schema() -> None:
    assert schema_errors(compose()) == []


@pytest.mark.parametrize(
    ("mistake", "where"),
    [
        # A misspelled service attribute (Compose would refuse to start: additional property).
        (lambda c: c["services"]["worker"].__setitem__("restrat", "always"), "services/worker"),
        # A misspelled top-level key.
        (lambda c: c.__setitem__("service", c.pop("services")), "<root>"),
        # A wrong type: ports as one number instead of a list.
        (lambda c: c["services"]["tempo"].__setitem__("ports", 8000), "services/tempo/ports"),
        # A wrong value: a depends_on condition that does not exist.
        (
            lambda c: c["services"]["tempo"]["depends_on"]["redis"].__setitem__("condition", "service_ready"),
            "services/tempo/depends_on/redis/condition",
        ),
        # A misspelled key inside the GPU reservation.
        (
            lambda c: c["services"]["worker"]["deploy"]["resources"]["reservations"]["devices"][0].__setitem__(
                "capability", ["gpu"]
            ),
            "services/worker/deploy/resources/reservations/devices/0",
        ),
    ],
    ids=["misspelled-service-key", "misspelled-top-level-key", "ports-not-a-list", "bad-condition", "gpu-key"],
)
def test_a_broken_copy_is_rejected_by_the_schema(mistake: Any, where: str) -> None:
    broken = copy.deepcopy(compose())
    mistake(broken)
    errors = schema_errors(broken)
    assert errors, "the schema accepted a broken compose file"
    assert any(e.startswith(f"{where}:") for e in errors), errors


def test_a_misspelled_key_in_the_yaml_text_is_rejected() -> None:
    text = COMPOSE_FILE.read_text()
    assert text.count("stop_grace_period:") == 1
    broken = load_compose(text.replace("stop_grace_period:", "stop_grace_periode:"))
    errors = schema_errors(broken)
    assert any(e.startswith("services/worker:") and "stop_grace_periode" in e for e in errors), errors


def _docker_compose() -> list[str]:
    """The `docker compose` command line, or skip saying why it cannot run here."""
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no `docker` binary on PATH: `docker compose config` cannot run (the schema test still does)")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        why = (probe.stderr or probe.stdout).strip().splitlines()[:1]
        pytest.skip(f"`docker` has no compose plugin ({'; '.join(why) or 'exit ' + str(probe.returncode)})")
    return [docker, "compose"]


def _compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    # The tempo service requires TEMPO_MCP_TOKEN (`${...:?}`); every profile is enabled so that every
    # service is parsed. `config` reads and validates only: it needs no running Docker engine.
    env = {**os.environ, "TEMPO_MCP_TOKEN": "compose-config-check"}
    profiles = sorted({p for s in compose()["services"].values() for p in s.get("profiles", [])})
    cmd = [*_docker_compose(), "--project-directory", str(ROOT), "-f", str(path)]
    cmd += [arg for p in profiles for arg in ("--profile", p)] + ["config", "--quiet"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def test_docker_compose_config_accepts_the_file() -> None:
    result = _compose_config(COMPOSE_FILE)
    assert result.returncode == 0, result.stderr


def test_docker_compose_config_rejects_a_misspelled_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("stop_grace_period:", "stop_grace_periode:"))
    result = _compose_config(broken)
    assert result.returncode != 0
    assert "stop_grace_periode" in result.stderr


def test_plain_up_needs_no_source_and_workers_are_profiles() -> None:
    text = COMPOSE_FILE.read_text()
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


def _fixed_host_ports(ports: list[Any]) -> list[Any]:
    """Port entries that publish on a fixed host port (two replicas of one service would collide)."""
    fixed = []
    for entry in ports:
        if isinstance(entry, dict):  # long syntax: `published` is the host port
            if entry.get("published") not in (None, ""):
                fixed.append(entry)
            continue
        # Short syntax [[IP:]HOST:]CONTAINER[/PROTOCOL]: a host part before the container port is fixed.
        parts = str(entry).rsplit("/", 1)[0].split(":")
        if len(parts) >= 2 and parts[-2] != "":
            fixed.append(entry)
    return fixed


def test_fixed_host_ports_are_recognised() -> None:
    assert _fixed_host_ports(["8000:8000", "127.0.0.1:9000:9000/tcp", {"target": 80, "published": 8080}]) == [
        "8000:8000",
        "127.0.0.1:9000:9000/tcp",
        {"target": 80, "published": 8080},
    ]
    assert _fixed_host_ports(["8000", "127.0.0.1::8000", {"target": 80}]) == []


def test_worker_can_be_scaled_to_many_replicas() -> None:
    worker = compose()["services"]["worker"]
    # `docker compose up --scale worker=N` refuses a fixed container name and N containers cannot bind
    # one host port; the worker's consumer name is its host name, unique per container.
    assert "container_name" not in worker
    assert "hostname" not in worker
    assert _fixed_host_ports(worker.get("ports", [])) == []
    assert worker["command"][:2] == ["tempo", "worker"]


def test_one_image_is_built_once_with_the_gpu_extra_and_a_clean_context() -> None:
    services = compose()["services"]
    builders = [name for name, s in services.items() if s.get("build")]
    assert builders == ["tempo"]
    assert "[gpu]" in services["tempo"]["build"]["dockerfile_inline"]
    assert {s["image"] for n, s in services.items() if n != "redis"} == {services["tempo"]["image"]}
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git"} <= set(ignored)


def test_input_videos_and_models_are_mounted_where_the_readme_says() -> None:
    services = compose()["services"]
    assert "./videos:/videos:ro" in services["ingest-file"]["volumes"]
    assert services["ingest-file"]["environment"]["TEMPO_VIDEO"].startswith("${TEMPO_VIDEO:-/videos/")
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "a file under `./videos`, which is mounted at `/videos`" in readme
    assert "Weights are mounted from `./models`" in readme
    for name in ("tempo", "ingest", "ingest-file", "worker"):
        assert "./models:/models:ro" in services[name]["volumes"]
        assert services[name]["environment"]["TEMPO_MODEL"].startswith("/models/")
