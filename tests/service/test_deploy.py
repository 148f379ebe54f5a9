"""Static checks of the deployment files: docker-compose.yml, Dockerfile, deploy/.

These tests read files only; nothing is built or started. The one test that
needs a Docker Compose v2 CLI is skipped where none is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DEPLOY_DIR = ROOT / "deploy"

APP_SERVICES = ("migrate", "api", "worker", "dashboard")
K8S_KINDS = {
    "Secret", "ConfigMap", "Job", "Deployment", "Service", "Kustomization",
    "PersistentVolumeClaim",
}  # fmt: skip
ARTIFACT_DIR = "CELLSEARCH_ARTIFACT_DIR"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def _k8s_documents() -> list[tuple[Path, dict[str, Any]]]:
    docs = []
    for path in sorted([*DEPLOY_DIR.rglob("*.yaml"), *DEPLOY_DIR.rglob("*.yml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path, doc))
    return docs


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for _, doc in _k8s_documents():
        if doc["kind"] in {"Deployment", "Job"}:
            specs.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
    return specs


def _deployment(name: str) -> dict[str, Any]:
    for _, doc in _k8s_documents():
        if doc["kind"] == "Deployment" and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no Deployment named {name}")


# --------------------------------------------------------------------------- compose


def test_compose_has_all_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= {"postgres", *APP_SERVICES}


def test_postgres_service(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    volume_names = {v.split(":", 1)[0] for v in postgres["volumes"] if isinstance(v, str)}
    named = volume_names & set(compose.get("volumes") or {})
    assert named, "postgres data must live in a named volume"


def test_migrate_is_one_shot_after_postgres(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert _command(migrate)[0] == "migrate"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate.get("restart", "no") == "no"


@pytest.mark.parametrize("name", ["api", "worker", "dashboard"])
def test_app_services_wait_for_migrate(services: dict[str, dict[str, Any]], name: str) -> None:
    depends = services[name]["depends_on"]
    assert depends["migrate"]["condition"] == "service_completed_successfully"


def test_api_service(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert _command(api)[:1] == ["serve"]
    command = _command(api)
    assert command[command.index("--workers") + 1] == "0"
    assert any(str(p).endswith(":8000") for p in api["ports"])


def test_worker_can_scale(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert _command(worker)[0] == "worker"
    assert "--device" in _command(worker)
    assert "container_name" not in worker
    assert "ports" not in worker
    # The image's HEALTHCHECK probes the API port; a worker has none.
    assert worker.get("healthcheck", {}).get("disable") is True


def test_dashboard_service(services: dict[str, dict[str, Any]]) -> None:
    dashboard = services["dashboard"]
    command = _command(dashboard)
    assert command[0] == "dashboard"
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert any(str(p).endswith(":8080") for p in dashboard["ports"])


def test_every_app_service_uses_the_same_database(services: dict[str, dict[str, Any]]) -> None:
    """One database and account; the workers reach it through PgBouncer, the rest directly."""
    urls = {
        name: _environment(services[name]).get("CELLSEARCH_DATABASE_URL") for name in APP_SERVICES
    }
    assert None not in urls.values(), urls
    direct = {urls[name] for name in APP_SERVICES if name != "worker"}
    assert len(direct) == 1, urls
    url = next(iter(direct))
    assert url is not None
    assert url.startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in url
    assert urls["worker"] == url.replace("@postgres:5432/", "@pgbouncer:6432/")


def test_workers_go_through_pgbouncer(services: dict[str, dict[str, Any]]) -> None:
    bouncer = services["pgbouncer"]
    assert bouncer["build"] == "deploy/pgbouncer"
    assert bouncer["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "6432" in " ".join(bouncer["healthcheck"]["test"])
    assert "ports" not in bouncer  # the workers reach it on the compose network only
    worker = services["worker"]
    assert worker["depends_on"]["pgbouncer"]["condition"] == "service_healthy"
    env = _environment(worker)
    assert env["CELLSEARCH_DB_POOLER"] == "pgbouncer"
    # LISTEN through the session-mode entry, never the transaction-mode one
    assert env["CELLSEARCH_LISTEN_URL"] == env["CELLSEARCH_DATABASE_URL"] + "_listen"
    bouncer_env = _environment(bouncer)
    listeners = bouncer_env["PGBOUNCER_LISTEN_POOL_SIZE"]
    assert env["CELLSEARCH_MAX_LISTENERS"] == listeners  # one server connection each


def test_pgbouncer_image_is_the_debian_package_run_unprivileged() -> None:
    folder = DEPLOY_DIR / "pgbouncer"
    dockerfile = (folder / "Dockerfile").read_text()
    assert "apt-get install" in dockerfile and "pgbouncer" in dockerfile
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}
    entrypoint = (folder / "entrypoint.sh").read_text()
    assert "pool_mode=transaction" in entrypoint
    assert "_listen = ${server} pool_mode=session" in entrypoint
    assert "server_reset_query = DISCARD ALL" in entrypoint  # UNLISTEN, locks let go


def test_app_services_share_one_image(services: dict[str, dict[str, Any]]) -> None:
    images = {services[name].get("image") for name in APP_SERVICES}
    assert len(images) == 1 and None not in images


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's volumes: the source of each target path (short or long form)."""
    mounts = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        mounts[target] = source
    return mounts


def test_every_service_that_runs_cellsearch_mounts_the_artifact_volume(
    compose: dict[str, Any], services: dict[str, dict[str, Any]]
) -> None:
    """One named volume, at the path CELLSEARCH_ARTIFACT_DIR names, in every service that
    runs the cellsearch image (the one-shot migration needs none): a worker writes the
    models that the API serves."""
    image = services["api"]["image"]
    running = [n for n, s in services.items()
               if s.get("image") == image and _command(s)[0] != "migrate"]  # fmt: skip
    assert set(running) >= {"api", "worker", "dashboard"}
    sources = set()
    for name in running:
        path = _environment(services[name]).get(ARTIFACT_DIR)
        assert path and path.startswith("/"), f"{name}: no {ARTIFACT_DIR}"
        source = _mounts(services[name]).get(path)
        assert source, f"{name} does not mount the artifact volume at {path}"
        sources.add((source, path))
    assert len(sources) == 1, sources  # one volume, one path
    ((source, path),) = sources
    assert source in (compose.get("volumes") or {}), "the artifacts must be a named volume"
    dockerfile = DOCKERFILE.read_text()  # the image makes it, so a new volume is writable
    assert re.search(rf"mkdir -p \S*{re.escape(path)}", dockerfile), path


def test_commented_gpu_variant_is_valid_yaml() -> None:
    """Uncommenting the worker's GPU block must give a valid device reservation."""
    lines = COMPOSE_FILE.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# deploy:")
    block = []
    for line in lines[start:]:
        if not line.strip().startswith("#"):
            break
        indent = len(line) - len(line.lstrip())
        block.append(" " * indent + line.strip()[2:])
    deploy = yaml.safe_load("\n".join(block))["deploy"]
    devices = deploy["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia"
    assert "gpu" in devices[0]["capabilities"]


def _compose_cli() -> list[str] | None:
    """A Docker Compose v2 command line, or None where none is installed."""
    candidates: list[list[str]] = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for cli in candidates:
        try:
            result = subprocess.run(
                [*cli, "version", "--short"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        # Compose v1 (1.x) does not know the compose specification used here.
        if result.returncode == 0 and re.match(r"v?([2-9]|\d{2,})\.", result.stdout.strip()):
            return cli
    return None


def test_compose_config_is_valid() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no Docker Compose v2 CLI (`docker compose version` fails)")
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- Dockerfile


def test_dockerfile_runs_as_non_root() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert users, "Dockerfile sets no USER"
    final = users[-1].split(":", 1)[0]
    assert final not in {"root", "0"}


def test_dockerfile_build_args_and_entrypoint() -> None:
    text = DOCKERFILE.read_text()
    args = dict(
        (m.group(1), m.group(2))
        for m in re.finditer(r"^ARG\s+(\w+)(?:=(\S*))?", text, flags=re.MULTILINE)
    )
    assert args.get("BASE_IMAGE") == "python:3.11-slim"
    assert "TORCH_INDEX_URL" in args
    assert args["TORCH_INDEX_URL"] in (None, "", '""'), "no default index host"
    assert re.search(r'^ENTRYPOINT\s+\["cellsearch"\]', text, flags=re.MULTILINE)
    assert re.search(r'^CMD\s+\["serve",\s*"--workers",\s*"0"\]', text, flags=re.MULTILINE)
    joined = text.replace("\\\n", " ")  # join continuation lines
    healthcheck = re.search(r"^HEALTHCHECK .*$", joined, flags=re.MULTILINE)
    assert healthcheck and "/api/v1/healthz" in healthcheck.group(0)
    assert "curl" not in healthcheck.group(0)


def test_dockerignore_keeps_build_context_small() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored
    assert ".git" in ignored


# --------------------------------------------------------------------------- Kubernetes


def test_k8s_manifests_parse_with_known_kinds() -> None:
    docs = _k8s_documents()
    assert docs, "no manifests under deploy/"
    for path, doc in docs:
        assert doc.get("kind") in K8S_KINDS, f"{path.name}: {doc.get('kind')}"
        assert doc.get("apiVersion"), path.name
        if doc["kind"] != "Kustomization":
            assert doc.get("metadata", {}).get("name"), path.name
    kinds = {doc["kind"] for _, doc in docs}
    assert kinds >= {"Secret", "ConfigMap", "Job", "Deployment", "Service"}


def test_k8s_migration_job_runs_migrate() -> None:
    jobs = [doc for _, doc in _k8s_documents() if doc["kind"] == "Job"]
    assert len(jobs) == 1
    (container,) = jobs[0]["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "migrate"


def test_k8s_api_has_probes_and_service() -> None:
    api = _deployment("cellsearch-api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert container["args"][:1] == ["serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/api/v1/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/api/v1/healthz"
    services = [doc for _, doc in _k8s_documents() if doc["kind"] == "Service"]
    selectors = [svc["spec"]["selector"] for svc in services]
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert any(sel.items() <= labels.items() for sel in selectors)


def test_k8s_cpu_worker_has_resources() -> None:
    worker = _deployment("cellsearch-worker")
    assert worker["spec"]["replicas"] >= 1
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["args"][0] == "worker"
    assert "cpu" in container["resources"]["requests"]
    assert "cpu" in container["resources"]["limits"]
    assert "nvidia.com/gpu" not in container["resources"].get("limits", {})


def test_k8s_gpu_worker_requests_a_gpu() -> None:
    worker = _deployment("cellsearch-worker-gpu")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[0] == "worker"
    assert args[args.index("--device") + 1].startswith("cuda")
    resources = container["resources"]
    assert int(resources["requests"]["nvidia.com/gpu"]) == 1
    # Extended resources must have equal requests and limits.
    assert resources["limits"]["nvidia.com/gpu"] == resources["requests"]["nvidia.com/gpu"]


def test_k8s_pods_read_the_database_url_and_run_as_non_root() -> None:
    secrets = {
        doc["metadata"]["name"]: doc for _, doc in _k8s_documents() if doc["kind"] == "Secret"
    }
    specs = _pod_specs()
    assert len(specs) >= 5
    for name, spec in specs:
        # Service links would inject CELLSEARCH_*-prefixed variables.
        assert spec.get("enableServiceLinks") is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in spec["containers"]:
            refs = [
                src["secretRef"]["name"]
                for src in container.get("envFrom", [])
                if "secretRef" in src
            ]
            assert refs, f"{name}: no database Secret"
            for ref in refs:
                assert "CELLSEARCH_DATABASE_URL" in secrets[ref]["stringData"], name


def test_k8s_workers_go_through_pgbouncer() -> None:
    bouncer = _deployment("cellsearch-pgbouncer")
    (container,) = bouncer["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("cellsearch-pgbouncer")
    assert container["ports"][0]["containerPort"] == 6432
    services = {doc["metadata"]["name"]: doc for _, doc in _k8s_documents()
                if doc["kind"] == "Service"}  # fmt: skip
    assert services["cellsearch-pgbouncer"]["spec"]["ports"][0]["port"] == 6432
    (secret,) = [doc for _, doc in _k8s_documents() if doc["kind"] == "Secret"]
    data = secret["stringData"]
    assert "@cellsearch-pgbouncer:6432/" in data["WORKER_DATABASE_URL"]
    assert data["WORKER_LISTEN_URL"] == data["WORKER_DATABASE_URL"] + "_listen"
    assert {"PGBOUNCER_DB_HOST", "PGBOUNCER_DB_NAME", "PGBOUNCER_DB_USER"} <= set(data)
    for name in ("cellsearch-worker", "cellsearch-worker-gpu"):
        (worker,) = _deployment(name)["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in worker["env"]}
        assert env["CELLSEARCH_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == (
            "WORKER_DATABASE_URL"
        )
        assert env["CELLSEARCH_LISTEN_URL"]["valueFrom"]["secretKeyRef"]["key"] == (
            "WORKER_LISTEN_URL"
        )
        assert env["CELLSEARCH_DB_POOLER"]["value"] == "pgbouncer"
        pool = {e["name"]: e.get("value") for e in container["env"]}
        assert env["CELLSEARCH_MAX_LISTENERS"]["value"] == pool["PGBOUNCER_LISTEN_POOL_SIZE"]
    for _, doc in _k8s_documents():  # the API and the migration stay direct
        if doc["kind"] in {"Deployment", "Job"} and "worker" not in doc["metadata"]["name"]:
            for c in doc["spec"]["template"]["spec"]["containers"]:
                assert "CELLSEARCH_DB_POOLER" not in {e["name"] for e in c.get("env", [])}


def test_k8s_cellsearch_pods_mount_the_shared_artifact_volume() -> None:
    """The API, both worker kinds and the dashboard mount one ReadWriteMany claim at the
    path CELLSEARCH_ARTIFACT_DIR names in the ConfigMap, and the claim is applied."""
    (config,) = [doc for _, doc in _k8s_documents() if doc["kind"] == "ConfigMap"]
    path = config["data"][ARTIFACT_DIR]
    claims = {doc["metadata"]["name"]: (p, doc) for p, doc in _k8s_documents()
              if doc["kind"] == "PersistentVolumeClaim"}  # fmt: skip
    running = {
        doc["metadata"]["name"]: doc["spec"]["template"]["spec"]
        for _, doc in _k8s_documents()
        if doc["kind"] == "Deployment"
        and any(c["image"].startswith("cellsearch:")
                for c in doc["spec"]["template"]["spec"]["containers"])
    }  # fmt: skip
    assert set(running) >= {
        "cellsearch-api", "cellsearch-worker", "cellsearch-worker-gpu", "cellsearch-dashboard"
    }  # fmt: skip
    used = set()
    for name, pod in running.items():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert path in mounts, f"{name} does not mount the artifact volume at {path}"
            claim = volumes[mounts[path]]["persistentVolumeClaim"]["claimName"]
            assert claim in claims, f"{name}: no claim {claim}"
            used.add(claim)
        # the volume's files are the pod user's group's (where Kubernetes sets ownership)
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"], name
    assert len(used) == 1, used
    claim_path, claim = claims[used.pop()]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    note = claim_path.read_text()
    assert "NFS" in note and "CELLSEARCH_ARTIFACT_URL=s3://" in note
    (kustomization,) = [doc for _, doc in _k8s_documents() if doc["kind"] == "Kustomization"]
    assert claim_path.name in kustomization["resources"]


def test_kustomization_lists_existing_files() -> None:
    for path, doc in _k8s_documents():
        if doc["kind"] != "Kustomization":
            continue
        for resource in doc["resources"]:
            assert (path.parent / resource).is_file(), resource


# --------------------------------------------------------------------------- threads


def test_deployed_workers_follow_the_one_thread_rule(services: dict[str, dict[str, Any]]) -> None:
    """Compose and Kubernetes workers take the service's default: one torch thread per
    process (search/worker/cpu.py), and a CPU worker pod is given one CPU for it."""
    thread_vars = {"OMP_NUM_THREADS", "MKL_NUM_THREADS", "CELLSEARCH_TORCH_THREADS"}
    assert not thread_vars & set(_environment(services["worker"]))
    for name, pod in _pod_specs():
        for container in pod["containers"]:
            env = {e["name"] for e in container.get("env", [])}
            assert not thread_vars & env, f"{name} fixes a thread count"
    (worker,) = _deployment("cellsearch-worker")["spec"]["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["cpu"] == worker["resources"]["requests"]["cpu"] == "1"
    for _, doc in _k8s_documents():
        if doc["kind"] == "ConfigMap":
            assert not thread_vars & set(doc["data"])
