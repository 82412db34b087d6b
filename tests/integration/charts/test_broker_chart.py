"""What the brokkr-broker chart installs, for the value combinations users choose between."""

from __future__ import annotations

import base64

import helm_python as helm
import pytest

from tests.integration.charts import scenarios
from tests.integration.charts.rendering import (
    BROKER,
    NAMESPACE,
    Release,
    chart,
    env_value,
    render,
    secret_ref,
)

FULLNAME = "brokkr-brokkr-broker"
POSTGRESQL = "brokkr-brokkr-broker-postgresql"


def broker(name: str) -> Release:
    return render(BROKER, scenarios.BROKER[name])


def decoded(secret: dict, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


# --- where state lives ------------------------------------------------------------------------------


def test_defaults_run_one_broker_on_sqlite_kept_on_a_volume_that_outlives_the_release() -> None:
    release = broker("defaults")
    deployment = release.one("Deployment")

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert env_value(release, "BROKKR_DATABASE__URL") == "sqlite+aiosqlite:////var/lib/brokkr/brokkr.db"
    claim = release.one("PersistentVolumeClaim")
    assert release.volume_for("/var/lib/brokkr") == {
        "name": "data",
        "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]},
    }
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    for optional in (
        "Secret",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "StatefulSet",
    ):
        assert not release.has(optional), optional
    assert not any(o["apiVersion"].startswith("monitoring.coreos.com") for o in release.objects)


def test_sqlite_can_live_on_an_emptydir_for_throwaway_trials() -> None:
    release = broker("sqlite-on-emptydir")

    assert release.volume_for("/var/lib/brokkr") == {"name": "data", "emptyDir": {}}
    assert not release.has("PersistentVolumeClaim")


def test_sqlite_can_use_an_existing_claim() -> None:
    release = render(BROKER, {"database": {"sqlite": {"persistence": {"existingClaim": "brokkr-data"}}}})

    assert release.volume_for("/var/lib/brokkr")["persistentVolumeClaim"] == {"claimName": "brokkr-data"}
    assert not release.has("PersistentVolumeClaim")


@pytest.mark.parametrize(
    "values",
    [{"replicaCount": 2}, {"autoscaling": {"enabled": True}}],
    ids=["two-replicas", "autoscaling"],
)
def test_sqlite_with_more_than_one_replica_is_refused_with_the_fix(values: dict) -> None:
    with pytest.raises(helm.HelmRenderError) as refused:
        render(BROKER, values)

    message = str(refused.value)
    assert "the embedded SQLite database supports exactly one broker replica" in message
    assert "database.external.existingSecret" in message
    assert "postgresql.enabled=true" in message


def test_external_database_url_is_read_from_the_users_secret_and_replicas_roll() -> None:
    release = broker("external-database-existing-secret")
    deployment = release.one("Deployment")

    assert secret_ref(release, "BROKKR_DATABASE__URL") == ("brokkr-database", "database-url")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert not release.has("PersistentVolumeClaim")
    assert not release.has("Secret")
    assert "/var/lib/brokkr" not in {m["mountPath"] for m in release.container()["volumeMounts"]}


def test_existing_secret_key_names_are_honoured() -> None:
    release = render(
        BROKER,
        {
            "database": {"external": {"existingSecret": "db", "existingSecretKey": "uri"}},
            "adminKey": {"existingSecret": "admin", "existingSecretKey": "hash"},
            "webhooks": {"existingSecret": "hooks", "existingSecretKey": "aes"},
        },
    )

    assert secret_ref(release, "BROKKR_DATABASE__URL") == ("db", "uri")
    assert secret_ref(release, "BROKKR_AUTH__ADMIN_KEY_HASH") == ("admin", "hash")
    assert secret_ref(release, "BROKKR_WEBHOOKS__ENCRYPTION_KEY") == ("hooks", "aes")


def test_secrets_given_inline_go_into_the_charts_secret_never_into_the_pod_spec() -> None:
    release = broker("external-database-inline-secrets")
    secret = release.one("Secret")

    assert secret["metadata"]["name"] == FULLNAME
    assert decoded(secret, "database-url") == scenarios.DATABASE_URL
    assert decoded(secret, "admin-key-hash") == scenarios.ADMIN_KEY_HASH
    assert decoded(secret, "webhooks-encryption-key") == "0123456789abcdef0123456789abcdef"
    assert secret_ref(release, "BROKKR_DATABASE__URL") == (FULLNAME, "database-url")
    assert secret_ref(release, "BROKKR_AUTH__ADMIN_KEY_HASH") == (FULLNAME, "admin-key-hash")
    assert secret_ref(release, "BROKKR_WEBHOOKS__ENCRYPTION_KEY") == (FULLNAME, "webhooks-encryption-key")
    pod_spec = str(release.one("Deployment"))
    assert scenarios.DATABASE_URL not in pod_spec
    assert scenarios.ADMIN_KEY_HASH not in pod_spec


def test_changing_an_inline_secret_restarts_the_brokers() -> None:
    def checksum(url: str) -> str:
        release = render(BROKER, {"database": {"external": {"url": url}}})
        return release.one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]

    assert checksum(scenarios.DATABASE_URL) != checksum(scenarios.DATABASE_URL.replace("secret", "rotated"))


def test_without_an_admin_key_hash_the_broker_creates_its_own_key() -> None:
    release = broker("defaults")

    assert "BROKKR_AUTH__ADMIN_KEY_HASH" not in release.env()
    assert "BROKKR_WEBHOOKS__ENCRYPTION_KEY" not in release.env()


def test_evaluation_postgresql_is_a_statefulset_the_brokers_reach_through_its_service() -> None:
    release = broker("evaluation-postgresql")
    statefulset = release.one("StatefulSet")
    service = next(s for s in release.all("Service") if s["metadata"]["name"] == POSTGRESQL)
    password_secret = release.one("Secret")

    assert statefulset["metadata"]["name"] == POSTGRESQL
    assert statefulset["spec"]["replicas"] == 1
    assert selects(service["spec"]["selector"], statefulset["spec"]["template"]["metadata"]["labels"])
    assert service["spec"]["ports"][0]["port"] == 5432
    assert password_secret["metadata"]["name"] == POSTGRESQL
    assert len(decoded(password_secret, "password")) == 32
    names = [e["name"] for e in release.container()["env"]]
    # Kubernetes expands $(POSTGRESQL_PASSWORD) only from variables defined before it.
    assert names.index("POSTGRESQL_PASSWORD") < names.index("BROKKR_DATABASE__URL")
    assert secret_ref(release, "POSTGRESQL_PASSWORD") == (POSTGRESQL, "password")
    assert env_value(release, "BROKKR_DATABASE__URL") == (
        f"postgresql+psycopg://brokkr:$(POSTGRESQL_PASSWORD)@{POSTGRESQL}:5432/brokkr"
    )
    postgres_env = {e["name"]: e for e in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert postgres_env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": POSTGRESQL,
        "key": "password",
    }
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "8Gi"


def test_evaluation_postgresql_uses_the_given_password() -> None:
    release = broker("evaluation-postgresql-on-emptydir")

    assert decoded(release.one("Secret"), "password") == "s3cret"
    assert "volumeClaimTemplates" not in release.one("StatefulSet")["spec"]


def test_broker_and_postgresql_selectors_never_pick_each_others_pods() -> None:
    release = broker("evaluation-postgresql")
    broker_pods = release.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    postgres_pods = release.one("StatefulSet")["spec"]["template"]["metadata"]["labels"]

    for service in release.all("Service"):
        selector = service["spec"]["selector"]
        assert selects(selector, broker_pods) != selects(selector, postgres_pods)
    deployment_selector = release.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert not selects(deployment_selector, postgres_pods)


def test_evaluation_postgresql_is_marked_not_for_production() -> None:
    manifests = chart(BROKER).render(
        scenarios.BROKER["evaluation-postgresql"], name="brokkr", namespace=NAMESPACE
    )

    assert "NOT FOR PRODUCTION" in manifests["brokkr-broker/templates/postgresql-statefulset.yaml"]
    assert "NOT FOR PRODUCTION" in broker("evaluation-postgresql").notes


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"database": {"external": {"url": scenarios.DATABASE_URL, "existingSecret": "db"}}},
            "database.external: set url or existingSecret, not both",
        ),
        (
            {**scenarios.EXTERNAL_DATABASE, "postgresql": {"enabled": True}},
            "database.external and postgresql.enabled exclude each other",
        ),
    ],
    ids=["url-and-existing-secret", "external-and-evaluation"],
)
def test_two_sources_for_the_database_are_refused(values: dict, expected: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=expected):
        render(BROKER, values)


# --- the pod -------------------------------------------------------------------------------------


def test_probes_ask_the_grpc_health_service_on_the_configured_port() -> None:
    release = render(BROKER, {"config": {"grpc": {"port": 6000}}})
    container = release.container()

    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": 6000}, probe
    assert container["startupProbe"]["failureThreshold"] * container["startupProbe"]["periodSeconds"] == 300
    assert {"name": "grpc", "containerPort": 6000, "protocol": "TCP"} in container["ports"]
    assert env_value(release, "BROKKR_GRPC__PORT") == "6000"
    grpc_port = next(p for p in release.one("Service")["spec"]["ports"] if p["name"] == "grpc")
    assert grpc_port == {
        "name": "grpc",
        "port": 50051,
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "grpc",
    }


def test_tls_mounts_the_certificate_and_probes_switch_to_http() -> None:
    release = broker("tls")
    container = release.container()

    cert = env_value(release, "BROKKR_GRPC__TLS__CERT_FILE")
    key = env_value(release, "BROKKR_GRPC__TLS__KEY_FILE")
    assert (cert, key) == ("/etc/brokkr/tls/tls.crt", "/etc/brokkr/tls/tls.key")
    assert release.volume_for("/etc/brokkr/tls")["secret"]["secretName"] == "brokkr-broker-tls"
    assert {i["path"] for i in release.volume_for("/etc/brokkr/tls")["secret"]["items"]} == {
        "tls.crt",
        "tls.key",
    }
    assert "BROKKR_GRPC__TLS__CLIENT_CA_FILE" not in release.env()
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert all("grpc" not in container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe"))


def test_mutual_tls_mounts_the_client_ca() -> None:
    release = broker("mtls")

    assert env_value(release, "BROKKR_GRPC__TLS__CLIENT_CA_FILE") == "/etc/brokkr/client-ca/ca.crt"
    assert release.volume_for("/etc/brokkr/client-ca")["secret"] == {
        "secretName": "brokkr-client-ca",
        "defaultMode": 0o440,
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"tls": {"clientCA": {"secret": "ca"}}},
            r"tls.clientCA.secret \(mutual TLS\) needs tls.certificateSecret",
        ),
        (
            {"tls": {"certificateSecret": "tls"}, "config": {"rest": {"enabled": False}}},
            "tls.certificateSecret needs config.rest.enabled=true",
        ),
        (
            {"serviceMonitor": {"enabled": True}, "config": {"rest": {"enabled": False}}},
            "serviceMonitor.enabled needs config.rest.enabled=true",
        ),
        (
            {"terminationGracePeriodSeconds": 10},
            r"terminationGracePeriodSeconds \(10\) must be longer than "
            r"config.grpc.shutdown_grace_seconds \(15\)",
        ),
        (
            {"podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}},
            "podDisruptionBudget: set minAvailable or maxUnavailable, not both",
        ),
        (
            {
                **scenarios.EXTERNAL_DATABASE,
                "autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 3},
            },
            "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
        ),
    ],
    ids=[
        "mtls-without-tls",
        "tls-without-rest",
        "monitor-without-rest",
        "short-grace",
        "pdb-both",
        "hpa-min-max",
    ],
)
def test_contradictory_values_are_refused_with_the_fix(values: dict, expected: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=expected):
        render(BROKER, values)


def test_pods_run_unprivileged_without_a_kubernetes_token() -> None:
    release = broker("defaults")
    pod = release.one("Deployment")["spec"]["template"]["spec"]
    container = release.container()

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert release.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == release.one("ServiceAccount")["metadata"]["name"]
    assert release.volume_for("/tmp") == {"name": "tmp", "emptyDir": {}}


def test_the_container_runs_brokkr_broker_serve_with_its_pod_name_as_replica_name() -> None:
    release = broker("defaults")
    container = release.container()

    assert (container["command"], container["args"]) == (["brokkr-broker"], ["serve"])
    assert container["image"] == "ghcr.io/brokkr/brokkr:0.1.0"
    assert release.env()["BROKKR_REPLICA_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_settings_under_config_become_environment_variables_verbatim() -> None:
    release = render(
        BROKER,
        {
            "config": {
                "grpc": {"max_message_bytes": 33554432, "keepalive_time_seconds": 12.5},
                "log": {"level": "debug"},
            }
        },
    )

    # Large whole numbers must not reach the broker as 3.3554432e+07.
    assert env_value(release, "BROKKR_GRPC__MAX_MESSAGE_BYTES") == "33554432"
    assert env_value(release, "BROKKR_GRPC__KEEPALIVE_TIME_SECONDS") == "12.5"
    assert env_value(release, "BROKKR_LOG__LEVEL") == "debug"
    assert env_value(release, "BROKKR_LOG__FORMAT") == "json"


def test_scheduling_values_reach_the_pod() -> None:
    values = scenarios.BROKER["scheduling"]
    release = broker("scheduling")
    template = release.one("Deployment")["spec"]["template"]
    pod = template["spec"]

    assert template["metadata"]["annotations"]["example.com/team"] == "platform"
    assert template["metadata"]["labels"]["example.com/tier"] == "control-plane"
    assert pod["tolerations"] == values["tolerations"]
    assert pod["affinity"] == values["affinity"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["imagePullSecrets"] == [{"name": "registry"}]
    assert release.container()["image"] == "ghcr.io/brokkr/brokkr@sha256:" + "ab" * 32
    (spread,) = pod["topologySpreadConstraints"]
    # The constraint counts broker pods unless the user says otherwise.
    assert spread["labelSelector"] == {
        "matchLabels": release.one("Deployment")["spec"]["selector"]["matchLabels"]
    }
    assert spread["topologyKey"] == "topology.kubernetes.io/zone"
    service = release.one("Service")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"] == {"example.com/lb": "internal"}


def test_a_topology_spread_constraints_own_selector_is_kept() -> None:
    own = {"matchLabels": {"app": "other"}}
    constraint = {
        "maxSkew": 1,
        "topologyKey": "zone",
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": own,
    }
    release = render(BROKER, {"topologySpreadConstraints": [constraint]})

    assert release.one("Deployment")["spec"]["template"]["spec"]["topologySpreadConstraints"] == [constraint]


# --- the objects around the pods ----------------------------------------------------------------------


def test_the_service_exposes_grpc_and_http_to_the_broker_pods() -> None:
    release = broker("defaults")
    service = release.one("Service")

    assert service["spec"]["type"] == "ClusterIP"
    assert {p["name"]: (p["port"], p["appProtocol"]) for p in service["spec"]["ports"]} == {
        "grpc": (50051, "grpc"),
        "http": (3000, "http"),
    }
    assert selects(
        service["spec"]["selector"], release.one("Deployment")["spec"]["template"]["metadata"]["labels"]
    )
    assert {"name": "http", "containerPort": 3000, "protocol": "TCP"} in release.container()["ports"]


def test_without_rest_only_grpc_is_exposed() -> None:
    release = broker("rest-disabled")

    assert [p["name"] for p in release.one("Service")["spec"]["ports"]] == ["grpc"]
    assert [p["name"] for p in release.container()["ports"]] == ["grpc"]
    assert env_value(release, "BROKKR_REST__ENABLED") == "false"
    assert "3000" not in release.notes


def test_more_than_one_replica_gets_a_pod_disruption_budget() -> None:
    budget = broker("external-database-existing-secret").one("PodDisruptionBudget")

    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "broker"
    assert render(BROKER, {"podDisruptionBudget": {"enabled": True}}).has("PodDisruptionBudget")
    assert broker("pod-disruption-budget-max-unavailable").one("PodDisruptionBudget")["spec"] == {
        "selector": budget["spec"]["selector"],
        "maxUnavailable": "34%",
    }


def test_autoscaling_owns_the_replica_count() -> None:
    release = broker("autoscaling")
    autoscaler = release.one("HorizontalPodAutoscaler")

    assert "replicas" not in release.one("Deployment")["spec"]
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": FULLNAME,
    }
    assert (autoscaler["spec"]["minReplicas"], autoscaler["spec"]["maxReplicas"]) == (2, 5)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in autoscaler["spec"]["metrics"]
    }
    assert targets == {"cpu": 70, "memory": 80}
    assert release.has("PodDisruptionBudget")


def test_the_service_monitor_scrapes_metrics_from_the_broker_service() -> None:
    release = broker("service-monitor")
    monitor = next(o for o in release.objects if o["kind"] == "ServiceMonitor")
    service = release.one("Service")

    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert (endpoint["port"], endpoint["path"], endpoint["interval"]) == ("http", "/metrics", "30s")


def test_the_network_policy_admits_the_given_peers_and_lets_the_broker_reach_its_database() -> None:
    release = broker("network-policy-external-database")
    policy = release.one("NetworkPolicy")["spec"]

    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert selects(
        policy["podSelector"]["matchLabels"],
        release.one("Deployment")["spec"]["template"]["metadata"]["labels"],
    )
    grpc_rule, http_rule = policy["ingress"]
    assert grpc_rule == {"ports": [{"port": "grpc", "protocol": "TCP"}]}
    assert http_rule["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    dns, database, extra = policy["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert database == {
        "ports": [{"port": 5432, "protocol": "TCP"}],
        "to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}],
    }
    assert extra == {"ports": [{"port": 443, "protocol": "TCP"}]}


def test_the_network_policy_opens_the_evaluation_postgresql_only() -> None:
    release = broker("network-policy-evaluation-postgresql")
    _, database = release.one("NetworkPolicy")["spec"]["egress"]

    (peer,) = database["to"]
    assert selects(
        peer["podSelector"]["matchLabels"],
        release.one("StatefulSet")["spec"]["template"]["metadata"]["labels"],
    )
    assert not selects(
        peer["podSelector"]["matchLabels"],
        release.one("Deployment")["spec"]["template"]["metadata"]["labels"],
    )


def test_the_network_policy_of_a_sqlite_broker_allows_dns_only_outwards() -> None:
    (dns,) = broker("network-policy-sqlite").one("NetworkPolicy")["spec"]["egress"]

    assert {p["port"] for p in dns["ports"]} == {53}


# --- what the user reads after install --------------------------------------------------------------------


def test_notes_tell_where_the_first_admin_key_is_and_how_to_try_the_broker() -> None:
    notes = broker("defaults").notes

    assert "grep --after-context=2 'Brokkr admin key'" in notes
    assert "brokkr-broker hash-key --generate" in notes
    assert f"port-forward service/{FULLNAME} 50051:50051 3000:3000" in notes
    assert 'curl http://localhost:3000/api/v1/agents -H "Authorization: Bearer $ADMIN_PAK"' in notes
    assert "one replica only" in notes


def test_notes_with_a_configured_admin_key_do_not_send_users_to_the_log() -> None:
    notes = broker("existing-secrets-for-every-secret").notes

    assert "Use the key whose hash you configured" in notes
    assert "Brokkr admin key" not in notes


def test_notes_for_mutual_tls_pass_the_client_certificate_to_brokkrctl() -> None:
    notes = broker("mtls").notes

    assert "--ca-file ca.crt --client-cert client.crt --client-key client.key agents list" in notes
