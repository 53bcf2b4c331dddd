"""The deployment files, read as Kubernetes, Docker Compose and HAProxy read them: the Kubernetes example
(Deployment, Service, probes, PodDisruptionBudget, a preStop that fits the drain in the grace period),
docker-compose.yml's scaled profile, and its HAProxy configuration (checked by HAProxy itself)."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path
from typing import Any

import yaml
from starlette.routing import Route

from api.app import create_app
from api.config import DEFAULT_PORT, POOLER_MODES, SHUTDOWN_FINISH_S, Settings
from tests.deploy.tools import HAPROXY, require

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# After SIGTERM: requests in flight finish within COCO_SHUTDOWN_GRACE_S, then the worker has SHUTDOWN_FINISH_S.
STOPPING_S = Settings().shutdown_grace_s + SHUTDOWN_FINISH_S


def manifests() -> dict[str, dict[str, Any]]:
    """Every document of deploy/k8s/*.yaml, by kind."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in found, f"two {document['kind']}s"
            found[document["kind"]] = document
    return found


def probe_paths() -> set[str]:
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:1/unused"))
    return {route.path for route in app.routes if isinstance(route, Route)}


def test_the_kubernetes_example_holds_together() -> None:
    kinds = manifests()
    assert {"Deployment", "Service", "PodDisruptionBudget", "Secret"} <= set(kinds)
    deployment, service, budget, secret = (kinds[k] for k in ("Deployment", "Service", "PodDisruptionBudget", "Secret"))
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    # Several replicas, and a disruption budget that always leaves some serving.
    assert spec["replicas"] >= 2
    assert 1 <= budget["spec"]["maxUnavailable"] < spec["replicas"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0

    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    [port] = container["ports"]
    assert port["containerPort"] == DEFAULT_PORT
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])

    # The probes ask paths the server answers: readiness on the database, liveness on the process alone.
    routes = probe_paths()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["path"] in routes
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])

    # preStop keeps serving while the endpoint's removal spreads; then SIGTERM's drain (requests in
    # flight, then the worker's exit: STOPPING_S at most) must end before the grace period does.
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = int(command[1])
    assert pre_stop >= 1
    assert pod["terminationGracePeriodSeconds"] > pre_stop + STOPPING_S

    # Its settings are the server's: through a transaction-mode pooler, with the direct URL beside it.
    env = {item["name"]: item for item in container["env"]}
    assert env["COCO_DB_POOLER"]["value"] in POOLER_MODES
    assert env["COCO_DB_POOLER"]["value"] == "transaction"
    for name, key in (("DATABASE_URL", "pooled-url"), ("DIRECT_DATABASE_URL", "direct-url")):
        reference = env[name]["valueFrom"]["secretKeyRef"]
        assert reference["name"] == secret["metadata"]["name"]
        assert key in secret["stringData"]
    assert int(env["COCO_WORKERS"]["value"]) >= 1 and int(env["COCO_DB_POOL_SIZE"]["value"]) >= 1
    # The image's user (Dockerfile: uid 10001) runs it.
    assert pod["securityContext"]["runAsUser"] == 10001
    assert "useradd --system --uid 10001" in (ROOT / "Dockerfile").read_text()


def test_the_compose_file_s_scaled_profile() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    scaled = {name for name, service in services.items() if "scaled" in service.get("profiles", [])}
    assert scaled == {"pgbouncer", "replica", "balancer"}
    # The default `docker compose up` is unchanged: the database and one server.
    assert not services["db"].get("profiles") and not services["server"].get("profiles")

    replica = services["replica"]
    env = replica["environment"]
    assert env["DATABASE_URL"].endswith("@pgbouncer:6432/coco")
    assert env["DIRECT_DATABASE_URL"].endswith("@db:5432/coco")
    assert env["COCO_DB_POOLER"] == "transaction"
    # `--scale replica=N` needs replicas without a published port; the balancer publishes one.
    assert "ports" not in replica
    assert int(replica["stop_grace_period"].rstrip("s")) > STOPPING_S
    balancer = services["balancer"]
    assert balancer["image"].startswith("haproxy:")
    assert any(v.startswith("./deploy/haproxy/haproxy.cfg:") for v in balancer["volumes"])
    assert balancer["ports"]

    bouncer = configparser.ConfigParser(delimiters=("=",))
    bouncer.read_string((ROOT / "deploy" / "pgbouncer" / "pgbouncer.ini").read_text())
    settings = bouncer["pgbouncer"]
    assert settings["pool_mode"] == "transaction"
    assert settings["listen_port"] == "6432"
    workers, pool = int(env["COCO_WORKERS"]), int(env["COCO_DB_POOL_SIZE"])
    # Room for the sizing formula's clients with a few replicas (and a rolling restart's extra one).
    assert int(settings["max_client_conn"]) >= pool * 2 * workers * 4
    assert "host=db port=5432" in bouncer["databases"]["*"]
    assert services["pgbouncer"]["build"] == "deploy/pgbouncer"


def test_haproxy_accepts_the_scaled_profile_s_configuration() -> None:
    """HAProxy's own check of the file the balancer mounts (its replicas are found at run time)."""
    config = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
    checked = subprocess.run(
        [require(HAPROXY, "haproxy"), "-c", "-f", str(config)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    text = config.read_text()
    assert "option httpchk GET /readyz" in text
    assert "balance roundrobin" in text
    assert "/readyz" in probe_paths()
