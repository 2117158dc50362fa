"""Deployment as code: every Kustomize overlay in deploy/k8s renders (``kubectl kustomize``)
and every object validates against the Kubernetes schemas offline (``kubernetes-validate``);
the compose file has the same services; the Dockerfile installs from the lock file and runs
as a non-root user. Without kubectl the Kubernetes tests skip, and fail under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "staging", "prod")
K8S_VERSION = "1.30.0"
# Every long-running process, and the migration Job.
DEPLOYMENTS = {"vanta-api", "vanta-relay", "vanta-dispatcher", "vanta-scheduler",
               "vanta-reconciler"}


def _kubectl() -> str:
    exe = shutil.which("kubectl")
    if exe is None:
        msg = "kubectl not found (it renders the Kustomize overlays)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def render(env: str) -> list[dict[str, Any]]:
    done = subprocess.run([_kubectl(), "kustomize", str(K8S / "overlays" / env)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _by_kind(objs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs if o["kind"] == kind}


@pytest.mark.parametrize("env", OVERLAYS)
def test_every_object_of_an_overlay_is_valid_against_the_kubernetes_schemas(env: str) -> None:
    import kubernetes_validate
    objs = render(env)
    for obj in objs:
        # strict: an unknown or misspelt field is an error, not silently dropped
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"].get("namespace") == f"vanta-{env}", obj["metadata"]
    assert set(_by_kind(objs, "Deployment")) == DEPLOYMENTS
    assert set(_by_kind(objs, "Job")) == {"vanta-migrate"}


def test_a_manifest_with_a_wrong_field_is_refused() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import ValidationError
    bad = next(o for o in render("prod") if o["kind"] == "Deployment")
    bad["spec"]["replicas"] = "three"
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


@pytest.mark.parametrize("env", OVERLAYS)
def test_processes_have_probes_requests_budgets_and_secrets_by_reference(env: str) -> None:
    objs = render(env)
    deployments = _by_kind(objs, "Deployment")
    minimum = 1 if env == "dev" else 2
    assert deployments["vanta-api"]["spec"]["replicas"] >= minimum
    assert deployments["vanta-dispatcher"]["spec"]["replicas"] >= minimum
    pods = [d["spec"]["template"]["spec"] for d in deployments.values()]
    pods.append(_by_kind(objs, "Job")["vanta-migrate"]["spec"]["template"]["spec"])
    for pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
            for var in c.get("env", []):
                # secrets are never inline values in the manifests
                assert "value" not in var, var
                assert var["valueFrom"]["secretKeyRef"]["name"] == "vanta-secrets"
    api = deployments["vanta-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for name in DEPLOYMENTS - {"vanta-api"}:
        assert "livenessProbe" in deployments[name]["spec"]["template"]["spec"]["containers"][0]
    assert set(_by_kind(objs, "PodDisruptionBudget")) == {"vanta-api", "vanta-dispatcher"}
    assert not _by_kind(objs, "Secret")


def test_overlays_pin_their_own_image() -> None:
    tags = {env: {c["image"] for o in render(env) if o["kind"] in ("Deployment", "Job")
                  for c in o["spec"]["template"]["spec"]["containers"]} for env in OVERLAYS}
    assert tags == {"dev": {"vanta:dev"}, "staging": {"ghcr.io/vanta-platform/vanta:rc"},
                    "prod": {"ghcr.io/vanta-platform/vanta:0.1.0"}}


def test_the_compose_file_runs_the_same_processes() -> None:
    doc = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = doc["services"]
    for svc in ("migrate", "api", "relay", "dispatcher", "scheduler", "reconciler"):
        assert svc in services, svc
        assert services[svc]["environment"]["VANTA_PROFILE"] == "production"
    assert services["api"]["deploy"]["replicas"] >= 2
    assert services["dispatcher"]["deploy"]["replicas"] >= 2
    assert services["migrate"]["command"] == ["vanta", "db", "upgrade"]
    # the long-running processes wait for the schema
    for svc in ("api", "relay", "dispatcher", "scheduler", "reconciler"):
        cond = services[svc]["depends_on"]["migrate"]["condition"]
        assert cond == "service_completed_successfully", svc
    nats = [s for s in services if s.startswith("nats")]
    assert len(nats) == 3, "a 3-node JetStream cluster"
    assert len(services["api"]["environment"]["VANTA_NATS_URL"].split(",")) == 3


def test_the_dockerfile_installs_from_the_lock_file_and_runs_as_a_non_root_user() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()]
    installs = [ln for ln in lines if ln.startswith("RUN pip install")]
    assert installs and all("-c constraints.txt" in ln for ln in installs)
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert lines.index(next(ln for ln in lines if ln.startswith("USER "))) > \
        lines.index(installs[-1])


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    return doc["services"]


def test_the_compose_file_runs_what_the_kubernetes_base_runs() -> None:
    """Each Deployment and the Job of the Kustomize base is a compose service (vanta-X is
    X, the Job vanta-migrate is migrate) with the same command and at least its replicas;
    read straight from the base files, so it needs no kubectl."""
    services = _compose()
    workloads: dict[str, tuple[list[str], int]] = {}
    for path in sorted((K8S / "base").glob("*.yaml")):
        for obj in yaml.safe_load_all(path.read_text()):
            if obj and obj["kind"] in ("Deployment", "Job"):
                pod = obj["spec"]["template"]["spec"]
                workloads[obj["metadata"]["name"]] = (pod["containers"][0]["command"],
                                                      obj["spec"].get("replicas", 1))
    assert set(workloads) == DEPLOYMENTS | {"vanta-migrate"}
    for name, (command, replicas) in workloads.items():
        svc = services[name.removeprefix("vanta-")]
        assert svc["command"] == command, name
        assert svc.get("deploy", {}).get("replicas", 1) >= replicas, name


def test_the_compose_file_has_redis_sentinel_and_a_postgres_replica() -> None:
    services = _compose()
    env = services["api"]["environment"]
    # three sentinels, a quorum of two, watching the master the processes ask them for
    sentinels = env["VANTA_REDIS_SENTINELS"].split(",")
    assert len(sentinels) == 3
    master = env["VANTA_REDIS_SENTINEL_MASTER"]
    for entry in sentinels:
        host, _, port = entry.partition(":")
        script = services[host]["command"][-1]
        assert "exec redis-sentinel" in script and "port " + port in script, host
        assert f"sentinel monitor {master} redis 6379 2" in script, host
    assert "--replicaof" in services["redis-replica"]["command"]
    assert "redis" in services["redis-replica"]["command"]
    # writes find whichever PostgreSQL node accepts them; lag-tolerant reads the replica
    assert "host=postgres:5432" in env["VANTA_DATABASE_URL"]
    assert "host=postgres-replica:5432" in env["VANTA_DATABASE_URL"]
    assert "target_session_attrs=read-write" in env["VANTA_DATABASE_URL"]
    assert "@postgres-replica:5432/" in env["VANTA_DATABASE_REPLICA_URL"]
    replica = services["postgres-replica"]
    assert "pg_basebackup -h postgres" in replica["command"][-1]
    assert " -R " in replica["command"][-1]  # writes its standby settings
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    mounts = services["postgres"]["volumes"]
    script = next(m for m in mounts if "docker-entrypoint-initdb.d" in m).split(":")[0]
    assert "host replication" in (ROOT / "deploy" / script).read_text()
    assert "wal_level=replica" in services["postgres"]["command"][-1]
    for svc in ("migrate", "api", "relay", "dispatcher", "scheduler", "reconciler"):
        assert services[svc]["environment"] == env, svc  # one shared block
