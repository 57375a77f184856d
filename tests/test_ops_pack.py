"""The ops pack (ops/, docs/operations.md) against the real tools: promtool checks and
unit-tests the alert rules, every metric the rules and the Grafana dashboard name is one a
live broker exports, a fresh broker lists its counters at zero, and a real Prometheus
scraping a live broker answers one of the dashboard's queries."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families
from support.cli import broker_cli
from support.clients import cognito_client, create_developer_pool
from support.processes import BrokerServer, broker_on_own_redis
from support.prometheus import (
    ALERT_RULES,
    ALERT_TESTS,
    DASHBOARD,
    EXAMPLE_CONFIG,
    JOB,
    PrometheusServer,
    promtool,
)

from config.backend import DEV_API_KEY

pytestmark = pytest.mark.slow  # servers of its own: not the fast lane

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
METRIC_NAME = re.compile(r"\b(broker_[a-z0-9_]+)")


def scrape(url: str) -> Samples:
    text = requests.get(f"{url}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((name, tuple(sorted(labels.items()))))


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERT_RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_exprs() -> dict[str, list[str]]:
    """Panel title -> its queries."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {p["title"]: [t["expr"] for t in p.get("targets", [])] for p in panels}


def backend_token(server: BrokerServer, user: str) -> dict[str, Any]:
    answer = requests.post(
        f"{server.url}/v1/token", headers={"X-Api-Key": DEV_API_KEY}, json={"user_id": user}
    )
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


@pytest.fixture(scope="module")
def live(broker_credentials: dict[str, str]) -> Iterator[BrokerServer]:
    """A broker on its own Redis that served both doors and holds a staged key."""
    with broker_on_own_redis(credentials=broker_credentials, workers=2) as (server, redis):
        setup: Any = cognito_client(server)
        pool = create_developer_pool(setup, "ops", "login.ops")
        for user in ("ann", "bob", "ann"):
            setup.get_open_id_token_for_developer_identity(
                IdentityPoolId=pool, Logins={"login.ops": user}
            )
            backend_token(server, user)
        staged = broker_cli({"REDIS_URL": redis.url}, "rotate-key")
        assert staged.returncode == 0, staged.stderr
        yield server


def test_promtool_accepts_the_rules_and_the_example_configuration() -> None:
    checked = promtool("check", "rules", str(ALERT_RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(rules())} rules found" in checked.stdout
    config = promtool("check", "config", str(EXAMPLE_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_rules_cover_what_an_operator_is_paged_for() -> None:
    exprs = " ".join(rule["expr"] for rule in rules())
    for needed in (
        "up{",  # broker down
        "broker_ready",
        "broker_redis_errors_total",
        "broker_requests_total",  # error ratio
        "histogram_quantile(0.99",
        "broker_upstream_breaker_open",
        "broker_signing_key_created_timestamp_seconds",
    ):
        assert needed in exprs, needed
    for rule in rules():
        assert rule["labels"]["severity"] in ("page", "ticket", "critical", "warning"), rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule


def test_promtool_unit_tests_fire_and_hold_every_alert() -> None:
    tested = promtool("test", "rules", str(ALERT_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    cases = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    exercised = {
        case["alertname"]: case
        for test in cases
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    held = {
        case["alertname"]
        for test in cases
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in rules()}
    assert names <= set(exercised), names - set(exercised)  # each seen firing
    assert names <= held, names - held  # and each seen not firing


def test_a_fresh_broker_lists_its_counters_at_zero(broker_credentials: dict[str, str]) -> None:
    with broker_on_own_redis(credentials=broker_credentials, workers=2) as (server, _):
        found = scrape(server.url)
    for door in ("aws", "backend"):
        assert sample(found, "broker_tokens_issued_total", door=door) == 0.0, door
        assert sample(found, "broker_token_cache_hits_total", door=door) == 0.0, door
    assert sample(found, "broker_identities_created_total", kind="developer") == 0.0
    assert sample(found, "broker_redis_errors_total") == 0.0
    assert sample(found, "broker_ready") == 1.0
    assert sample(found, "broker_upstream_breaker_open") == 0.0


def test_every_metric_the_rules_and_the_dashboard_name_is_exported(live: BrokerServer) -> None:
    exported = {name for name, _ in scrape(live.url)}
    named = {
        match
        for expr in [rule["expr"] for rule in rules()]
        + [e for exprs in dashboard_exprs().values() for e in exprs]
        for match in METRIC_NAME.findall(expr)
    }
    assert named, "no broker metric named"
    assert named <= exported, sorted(named - exported)


def test_a_real_prometheus_scrapes_the_broker_and_answers_a_dashboard_query(
    live: BrokerServer,
) -> None:
    (expr,) = dashboard_exprs()["Request rate by door and operation"]
    query = expr.replace("$job", JOB).replace("$instance", ".*").replace("$__rate_interval", "20s")
    target = live.url.removeprefix("http://")
    with PrometheusServer([target]) as prometheus:
        deadline = time.monotonic() + 45
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            backend_token(live, f"user-{time.monotonic_ns()}")  # traffic across scrapes
            result = prometheus.query(query)
            if any(
                r["metric"].get("door") == "backend" and float(r["value"][1]) > 0 for r in result
            ):
                break
            time.sleep(1)
        else:
            pytest.fail(f"no backend request rate after 45 s: {result}; {prometheus.log_path}")
        doors = {r["metric"]["door"] for r in result}
        assert "backend" in doors
        (up,) = prometheus.query(f'up{{job="{JOB}"}}')
        assert up["value"][1] == "1" and up["metric"]["instance"] == target
        loaded = prometheus.api("rules")["groups"]
        alerts = [rule for group in loaded for rule in group["rules"] if rule["type"] == "alerting"]
        assert {rule["name"] for rule in alerts} == {rule["alert"] for rule in rules()}
        firing = [rule["name"] for rule in alerts if rule["state"] == "firing"]
        assert firing == [], firing  # a healthy broker pages no one
        with urllib.request.urlopen(f"{prometheus.url}/-/healthy", timeout=5) as resp:
            assert resp.status == 200
