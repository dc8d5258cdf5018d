"""The Helm chart (deploy/helm/kindly) renders, lints and validates, offline.

The templates are rendered by Helm's own Go engine (helm-python-sdk binds Helm's SDK as a
library: the same code as `helm template`, no helm binary, no cluster; tests/support/helmchart
runs it in a child process), linted as `helm lint --strict` would, and every manifest is validated against the Kubernetes API's JSON schemas
(kubernetes-validate, strict: an unknown field is an error) for the oldest and the newest
Kubernetes the chart claims. Then what an operator relies on is checked on the objects
themselves: the processes compose.yaml runs, probes, secrets only by reference, non-root
pods, autoscaling on the queue-depth metric, the migrations hook.
"""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kindly.cli import cli
from tests.support.helmchart import CHART, HelmRenderError, HelmValuesError, lint, render

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
PRODUCTION = yaml.safe_load((CHART / "values-production.yaml").read_text(encoding="utf-8"))
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
KUBERNETES = ("1.27.0", "1.37.0")
"""The oldest Kubernetes the chart supports (Chart.yaml's kubeVersion) and the newest schema."""
METRIC = "kindly_rq_queue_jobs"
"""The queue-depth gauge the workers' autoscalers follow (label `queue`)."""

EVERYTHING: dict[str, Any] = {
    # every optional part on at once, so that no template goes unvalidated
    "config": {"extra": {"KINDLY_FAST_LANE": "on"}, "outbox": "on"},
    "secrets": {"fromSecrets": {"KINDLY_DATABASE_URL": {"name": "db", "key": "url"}}},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "serviceAccountName": "kindly",
    "imagePullSecrets": [{"name": "registry"}],
    "tmp": {"medium": "Memory"},
    "data": {"existingClaim": "kindly-data"},
    "podLabels": {"team": "collections"},
    "podAnnotations": {"example.com/owner": "collections"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "web": {"autoscaling": {"enabled": True}},
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "hosts": ["pay.example.com"],
        "tls": [{"secretName": "tls", "hosts": ["pay.example.com"]}],
    },
    "workers": {
        "worker": {"maxJobs": 5000, "autoscaling": {"enabled": True}},
        "video-worker": {
            "autoscaling": {"enabled": True},
            "livenessProbe": {"tcpSocket": {"port": "metrics"}, "periodSeconds": 30},
        },
    },
}
VALUE_SETS = {"defaults": None, "production": PRODUCTION, "everything": EVERYTHING}


def objects(values: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders for these values (NOTES.txt left out)."""
    found = []
    for path, text in render(values).items():
        if path.endswith(".yaml"):
            found += [doc for doc in yaml.safe_load_all(text) if doc is not None]
    return found


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(object name, pod template) of every Deployment, Job and CronJob."""
    for doc in docs:
        spec = doc["spec"]
        if doc["kind"] == "CronJob":
            spec = spec["jobTemplate"]["spec"]
        if doc["kind"] in ("Deployment", "Job", "CronJob"):
            yield doc["metadata"]["name"], spec["template"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


@pytest.fixture(scope="module", params=list(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, objects(VALUE_SETS[request.param])


# --- it renders, lints and matches the Kubernetes schemas -----------------------------------


@pytest.mark.parametrize("values", [None, PRODUCTION, EVERYTHING], ids=list(VALUE_SETS))
def test_helm_lint_strict_finds_nothing(values):
    report = lint(values, kube_version="v1.27.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert report["errors"] == [] and problems == [], report


def test_every_manifest_is_valid_for_the_kubernetes_schemas(rendered):
    _, docs = rendered
    kinds = set()
    for doc in docs:
        kinds.add(doc["kind"])
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked by test_the_service_monitor_scrapes_the_metrics_port
        for version in KUBERNETES:
            # strict: a misspelt or misplaced field is an error, not silently dropped
            kubernetes_validate.validate(doc, version, strict=True)
    assert {"Deployment", "Service", "PodDisruptionBudget", "Job", "CronJob"} <= kinds


def test_the_everything_set_renders_every_kind_the_chart_has():
    kinds = {doc["kind"] for doc in objects(EVERYTHING)}
    assert kinds == {
        "Deployment", "Service", "PodDisruptionBudget", "Job", "CronJob",
        "HorizontalPodAutoscaler", "Ingress", "ServiceMonitor",
    }  # fmt: skip


def test_every_file_renders_to_yaml_with_named_objects(rendered):
    _, docs = rendered
    names = [(doc["kind"], doc["metadata"]["name"]) for doc in docs]
    assert len(names) == len(set(names)), "two objects of one kind share a name"
    for kind, name in names:
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name), (kind, name)


def test_a_long_release_name_still_gives_valid_object_names():
    docs = objects(None)
    long = [
        doc["metadata"]["name"]
        for path, text in render(None, release="a" * 53).items()
        if path.endswith(".yaml")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    assert len(long) == len(docs) and max(map(len, long)) <= 63


# --- helm lint of our own: every value a template reads exists, every value is read ---------


def _template_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (CHART / "templates").iterdir())


def _paths(values: Any, prefix: tuple[str, ...] = (), leaves: bool = False) -> set[tuple[str, ...]]:
    """Every key path of a values tree (lists and empty maps are leaves), or only the leaves."""
    if not isinstance(values, dict):
        return set()
    found = set()
    for key, value in values.items():
        if not (leaves and isinstance(value, dict) and value):
            found.add((*prefix, key))
        found |= _paths(value, (*prefix, key), leaves)
    return found


def _references() -> tuple[set[tuple[str, ...]], set[tuple[str, ...]]]:
    """The value paths the templates read: (read directly, read through a helper's `.own`,
    which falls back to a global value when the component has none)."""
    text = _template_text()
    bound: dict[str, list[tuple[str, ...]]] = {}  # $name -> the value paths it stands for

    def resolve(expression: str) -> list[tuple[str, ...]]:
        if ".Values." in expression:
            return [tuple(expression.split(".Values.", 1)[1].split("."))]
        name, _, rest = expression.lstrip("$").partition(".")
        return [(*base, *rest.split(".")) if rest else base for base in bound.get(name, [])]

    def entries(path: tuple[str, ...]) -> list[str]:
        node: Any = DEFAULTS
        for part in path:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return list(node) if isinstance(node, dict) else []

    for name, source in re.findall(r"(?<!, )\$(\w+) := (\S*\.Values\.[\w.]+)", text):
        bound[name] = resolve(source)
    for name, source in re.findall(r"range \$\w+, \$(\w+) := (\$?[\w.]+)", text):
        bound[name] = [(*base, key) for base in resolve(source) for key in entries(base)]
    # a binding ($web := .Values.web) reads nothing by itself: what is read is $web.replicas
    uses = re.sub(r"\$\w+ := \S+", "", text)
    read = {tuple(m.split(".")) for m in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", uses)}
    for source in re.findall(r"range \$\w+, \$\w+ := (\$?[\w.]+)", text):
        read |= set(resolve(source))  # ranging over a map reads it, even when it is empty
    for name in bound:
        for rest in re.findall(rf"\${name}\.([A-Za-z0-9_.]+)", text):
            read |= {(*base, *rest.split(".")) for base in bound[name]}
    owners = set(re.findall(r'"own" \$(\w+)', text))
    own = {(*base, *rest.split(".")) for rest in re.findall(r"\.own\.([A-Za-z0-9_.]+)", text)
           for name in owners for base in bound.get(name, [])}  # fmt: skip
    return read, own


def test_every_value_a_template_reads_is_in_values_yaml():
    read, _ = _references()
    assert len(read) > 50
    known = _paths(DEFAULTS)
    assert sorted(p for p in read if p not in known) == []


def test_every_value_in_values_yaml_is_read_by_a_template():
    read, own = _references()
    seen = read | own
    unread = [
        ".".join(path) for path in sorted(_paths(DEFAULTS, leaves=True))
        if not any(path[:n] in seen for n in range(1, len(path) + 1))
    ]  # fmt: skip
    assert unread == []


def test_production_values_only_set_what_the_chart_knows():
    known = _paths(DEFAULTS)
    free = ("resources", "nodeSelector", "tolerations", "affinity", "topologySpreadConstraints",
            "annotations", "labels", "queues", "jobs", "fromSecrets", "extra", "podAnnotations")  # fmt: skip
    unknown = [
        p for p in _paths(PRODUCTION)
        if p not in known and not any(part in free for part in p[:-1])
    ]  # fmt: skip
    assert unknown == []


# --- what the operator relies on ------------------------------------------------------------


def test_the_processes_are_the_ones_compose_runs():
    docs = objects(None)
    deployments = by_kind(docs, "Deployment")
    web = deployments["kindly-web"]["spec"]["template"]["spec"]["containers"][0]
    everywhere = "0.0.0.0"  # noqa: S104 - inside the pod; the Service decides what is published
    assert web["command"] == ["kindly", "serve", "--host", everywhere, "--port", "5000",
                              "--workers", "2"]  # fmt: skip
    compose_web = COMPOSE["services"]["web"]["command"]
    assert web["command"][:6] == compose_web[:6] and compose_web[6] == "--workers"
    for service in ("worker", "video-worker"):
        container = deployments[f"kindly-{service}"]["spec"]["template"]["spec"]["containers"][0]
        assert container["command"] == COMPOSE["services"][service]["command"], service
        grace = deployments[f"kindly-{service}"]["spec"]["template"]["spec"]
        seconds = {"2m": 120, "5m": 300}[COMPOSE["services"][service]["stop_grace_period"]]
        assert grace["terminationGracePeriodSeconds"] == seconds, service


def test_timed_and_one_shot_commands_exist_in_the_kindly_command():
    docs = objects(None)
    commands = [
        spec["spec"]["containers"][0]["command"]
        for _, spec in pod_specs(docs)
        if spec["spec"].get("restartPolicy") == "Never"
    ]
    assert ["kindly", "migrate"] in commands and ["kindly", "webhooks", "deliver"] in commands
    for command in commands:
        group = cli
        for word in command[1:]:
            group = group.commands[word]  # KeyError: the chart runs a command that isn't there


def test_migrations_run_as_a_hook_before_install_and_upgrade():
    docs = objects(None)
    job = by_kind(docs, "Job")["kindly-migrations"]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 0
    # A hook runs before the chart's other objects exist: it may use only what is already
    # there (its image, literal settings, the operator's Secrets), never a chart's object.
    chart_made = {(d["kind"], d["metadata"]["name"]) for d in docs if d is not job}
    assert "serviceAccountName" not in pod
    assert not any(kind in ("ConfigMap", "Secret", "ServiceAccount") for kind, _ in chart_made)
    assert not objects({"migrations": {"enabled": False}}).count(job)


def test_the_web_probes_ask_healthz_on_the_app_port():
    docs = objects(PRODUCTION)
    pod = by_kind(docs, "Deployment")["kindly-web"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert ports["http"] == 5000
    # a startup that migrates may take minutes; liveness must not kill it meanwhile
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120


def test_no_secret_value_is_rendered_only_references(rendered):
    _, docs = rendered
    assert not [d for d in docs if d["kind"] in ("Secret", "ConfigMap")]
    secret_name = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY$|KEY_ID$|DATABASE_URL|REDIS_URL")
    for name, template in pod_specs(docs):
        for container in template["spec"]["containers"]:
            for var, item in env_of(container).items():
                if secret_name.search(var):
                    assert "value" not in item and "secretKeyRef" in item["valueFrom"], var
            refs = [e["secretRef"]["name"] for e in container.get("envFrom", [])]
            assert refs in ([], ["kindly"]), name


def test_the_values_files_hold_no_secret():
    credentials = re.compile(r"://[^/\s:@]+:[^/\s@]+@")  # a URL with user:password@
    for path in (CHART / "values.yaml", CHART / "values-production.yaml"):
        text = path.read_text(encoding="utf-8")
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        assert not credentials.search(code), path.name
    for values in (DEFAULTS, PRODUCTION):
        assert not any(
            re.search(r"SECRET|PASSWORD|TOKEN|_KEY", k) for k in values["config"].get("extra", {})
        )


def test_a_secret_in_plain_settings_is_refused():
    with pytest.raises(HelmRenderError, match=r"config\.extra\.KINDLY_SECRET_KEY.*secret"):
        render({"config": {"extra": {"KINDLY_SECRET_KEY": "x" * 32}}})


def test_every_pod_runs_unprivileged_on_a_read_only_root(rendered):
    _, docs = rendered
    specs = list(pod_specs(docs))
    assert len(specs) >= 5
    for name, template in specs:
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == 10001, name  # the image's kindly user
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["shareProcessNamespace"] is True, name  # compose's init: orphans reaped
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], name  # tempfile, gunicorn, ffmpeg
            assert env_of(container)["KINDLY_DATA_DIR"]["value"] == "/data" and "/data" in mounts
            assert "resources" in container and container["resources"]["limits"]["memory"]


def test_metrics_have_their_own_port_never_the_public_service(rendered):
    label, docs = rendered
    service = by_kind(docs, "Service")["kindly-web"]
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]
    long_running = by_kind(docs, "Deployment")
    for name, template in pod_specs(docs):
        container = template["spec"]["containers"][0]
        port = env_of(container).get("KINDLY_METRICS_PORT")
        if name not in long_running:
            assert port is None, name  # one-shot pods serve no metrics
            continue
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert str(ports["metrics"]) == port["value"] != str(ports.get("http")), name
        annotations = template["metadata"].get("annotations", {})
        if label != "production":  # production scrapes through the ServiceMonitor
            assert annotations["prometheus.io/scrape"] == "true", name
            assert annotations["prometheus.io/port"] == port["value"], name


def test_metrics_off_leaves_no_port_and_no_annotation():
    docs = objects({"metrics": {"enabled": False}})
    for name, template in pod_specs(docs):
        container = template["spec"]["containers"][0]
        assert "KINDLY_METRICS_PORT" not in env_of(container), name
        assert "metrics" not in [p["name"] for p in container.get("ports", [])], name
        assert "prometheus.io/scrape" not in template["metadata"].get("annotations", {}), name


def test_the_service_monitor_scrapes_the_metrics_port():
    docs = objects(PRODUCTION)
    monitor = by_kind(docs, "ServiceMonitor")["kindly"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = by_kind(docs, "Service")["kindly-metrics"]
    assert service["spec"]["clusterIP"] == "None"
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    # the metrics Service reaches the web and both workers, nothing one-shot
    reached = [
        name for name, template in pod_specs(docs)
        if service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    ]  # fmt: skip
    assert sorted(reached) == ["kindly-video-worker", "kindly-web", "kindly-worker"]


def test_workers_scale_on_the_depth_of_their_own_queues():
    docs = objects(PRODUCTION)
    deployments = by_kind(docs, "Deployment")
    autoscalers = by_kind(docs, "HorizontalPodAutoscaler")
    assert set(autoscalers) == {"kindly-web", "kindly-worker", "kindly-video-worker"}
    from kindly.infra.metrics import ALL_SPECS

    exported = {spec.name: spec.labels for spec in ALL_SPECS}
    for name in ("kindly-worker", "kindly-video-worker"):
        hpa = autoscalers[name]["spec"]
        target = deployments[hpa["scaleTargetRef"]["name"]]
        assert hpa["scaleTargetRef"]["kind"] == "Deployment" and target["metadata"]["name"] == name
        assert "replicas" not in target["spec"]  # the autoscaler owns the count
        queues = target["spec"]["template"]["spec"]["containers"][0]["command"][2:]
        scaled = {}
        for metric in hpa["metrics"]:
            assert metric["type"] == "External"
            assert metric["external"]["metric"]["name"] == METRIC
            assert "queue" in exported[METRIC]  # a metric Kindly exports, with that label
            queue = metric["external"]["metric"]["selector"]["matchLabels"]["queue"]
            scaled[queue] = metric["external"]["target"]
        assert set(scaled) <= set(queues) and scaled
        assert all(t["type"] == "AverageValue" and int(t["averageValue"]) > 0
                   for t in scaled.values())  # fmt: skip
        assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert set(by_kind(objects(None), "HorizontalPodAutoscaler")) == set()  # opt-in


def test_scaling_on_a_queue_the_worker_does_not_take_is_refused():
    values = copy.deepcopy(EVERYTHING)
    values["workers"]["video-worker"]["autoscaling"]["queues"] = {"render": 10}
    with pytest.raises(HelmRenderError, match=r"video-worker.*does not listen on render"):
        render(values)


def test_every_selector_finds_its_pods(rendered):
    _, docs = rendered
    pods = {name: t["metadata"]["labels"] for name, t in pod_specs(docs)}
    for name, deployment in by_kind(docs, "Deployment").items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pods[name].items(), name
        others = [
            n for n, labels in pods.items() if n != name and selector.items() <= labels.items()
        ]
        assert others == [], (name, others)  # no two Deployments claim one pod
    for name, budget in by_kind(docs, "PodDisruptionBudget").items():
        assert budget["spec"]["selector"]["matchLabels"].items() <= pods[name].items(), name
        assert budget["spec"]["maxUnavailable"] == 1  # a one-replica worker can still drain
    web = by_kind(docs, "Service")["kindly-web"]["spec"]["selector"]
    assert [n for n, labels in pods.items() if web.items() <= labels.items()] == ["kindly-web"]
    for ingress in by_kind(docs, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            backend = rule["http"]["paths"][0]["backend"]["service"]
            assert backend == {"name": "kindly-web", "port": {"name": "http"}}


def test_an_ingress_without_a_host_is_refused():
    with pytest.raises(HelmRenderError, match=r"ingress\.hosts"):
        render({"ingress": {"enabled": True}})


def test_the_default_queue_keeps_a_worker_for_the_scheduled_jobs(rendered):
    label, docs = rendered
    deployments = by_kind(docs, "Deployment")
    autoscalers = by_kind(docs, "HorizontalPodAutoscaler")
    takers = [
        name for name, d in deployments.items()
        if "default" in d["spec"]["template"]["spec"]["containers"][0]["command"][2:]
    ]  # fmt: skip
    assert takers, label
    for name in takers:
        least = autoscalers[name]["spec"]["minReplicas"] if name in autoscalers else None
        assert (least or deployments[name]["spec"]["replicas"]) >= 1, name


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"config": {"payment": "stripe"}}, r"/config.*additional properties 'payment'"),
        ({"config": {"payments": "paypal"}}, r"/config/payments.*one of"),
        ({"config": {"baseUrl": "pay.example.com"}}, r"/config/baseUrl.*does not match"),
        ({"workers": {"worker": {"queues": ["renders"]}}}, r"/workers/worker/queues/0"),
        ({"web": {"replica": 3}}, r"/web.*additional properties 'replica'"),
        ({"secrets": {"fromSecrets": {"KINDLY_DATABASE_URL": {"name": "db"}}}}, r"missing.*key"),
    ],
)
def test_a_mistyped_or_impossible_value_is_refused_naming_it(values, message):
    with pytest.raises(HelmValuesError, match=message):
        render(values)


def test_helms_go_runtime_stays_out_of_the_test_process():
    render(None)
    assert "helm_python" not in sys.modules  # later tests fork RQ horses and servers
