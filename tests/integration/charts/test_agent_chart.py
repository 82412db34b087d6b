"""What the brokkr-agent chart installs in a cluster, for the value combinations users choose between."""

from __future__ import annotations

import base64

import helm_python as helm
import pytest

from tests.integration.charts import scenarios
from tests.integration.charts.rendering import AGENT, NAMESPACE, Release, env_value, render

FULLNAME = "brokkr-brokkr-agent"
KEY_DIRECTORY = "/etc/brokkr/agent-key"


def agent(name: str) -> Release:
    return render(AGENT, scenarios.AGENT[name])


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"agentKey": {"existingSecret": "k"}}, "config.broker.address is required"),
        ({"config": {"broker": {"address": "b:50051"}}}, "agentKey is required"),
        (
            {**scenarios.AGENT_REQUIRED, "agentKey": {"existingSecret": "k", "value": scenarios.AGENT_KEY}},
            "agentKey: set value or existingSecret, not both",
        ),
    ],
    ids=["no-address", "no-key", "two-keys"],
)
def test_an_agent_without_a_broker_address_or_exactly_one_key_is_refused(values: dict, expected: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=expected):
        render(AGENT, values)


def test_one_agent_dials_the_broker_with_the_key_mounted_from_the_users_secret() -> None:
    release = agent("cluster-rbac")
    deployment = release.one("Deployment")
    container = release.container()

    assert deployment["spec"]["replicas"] == 1
    # Never two sessions for one agent, not even during an update.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert (container["command"], container["args"]) == (["brokkr-agent"], ["run"])
    assert env_value(release, "BROKKR_BROKER__ADDRESS") == "brokkr.example.com:50051"
    assert env_value(release, "BROKKR_BROKER__KEY_FILE") == f"{KEY_DIRECTORY}/agent-key"
    assert release.volume_for(KEY_DIRECTORY)["secret"] == {
        "secretName": "brokkr-agent-key",
        "defaultMode": 0o440,
        "items": [{"key": "agent-key", "path": "agent-key"}],
    }
    # A subPath mount would freeze the file; a directory mount lets a rotated key through.
    assert all("subPath" not in m for m in container["volumeMounts"])
    assert "BROKKR_BROKER__KEY" not in release.env()
    assert not release.has("Secret")


def test_an_inline_key_is_stored_in_the_charts_secret_and_mounted_from_there() -> None:
    release = agent("inline-key")
    secret = release.one("Secret")

    assert secret["metadata"]["name"] == FULLNAME
    assert base64.b64decode(secret["data"]["agent-key"]).decode() == scenarios.AGENT_KEY
    assert release.volume_for(KEY_DIRECTORY)["secret"]["secretName"] == FULLNAME
    assert scenarios.AGENT_KEY not in str(release.one("Deployment"))


def test_the_key_may_sit_under_any_name_in_the_existing_secret() -> None:
    release = render(
        AGENT, {**scenarios.AGENT_REQUIRED, "agentKey": {"existingSecret": "s", "existingSecretKey": "pak"}}
    )

    assert release.volume_for(KEY_DIRECTORY)["secret"]["items"] == [{"key": "pak", "path": "agent-key"}]
    assert env_value(release, "BROKKR_BROKER__KEY_FILE") == f"{KEY_DIRECTORY}/agent-key"


def test_by_default_the_agent_may_manage_the_whole_cluster() -> None:
    release = agent("cluster-rbac")
    role = release.one("ClusterRole")
    binding = release.one("ClusterRoleBinding")

    assert role["rules"] == [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": FULLNAME,
    }
    service_account = release.one("ServiceAccount")["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": service_account["name"], "namespace": NAMESPACE}
    ]
    assert (
        release.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == service_account["name"]
    )
    assert not release.has("Role")
    assert not release.has("RoleBinding")
    assert "BROKKR_KUBERNETES__NAMESPACE" not in release.env()


def test_namespace_scope_grants_one_namespace_and_tells_the_agent_so() -> None:
    release = agent("namespace-rbac")
    role = release.one("Role")
    binding = release.one("RoleBinding")

    assert role["metadata"]["namespace"] == "team-a"
    assert binding["metadata"]["namespace"] == "team-a"
    assert binding["roleRef"]["kind"] == "Role"
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    assert env_value(release, "BROKKR_KUBERNETES__NAMESPACE") == "team-a"
    assert not release.has("ClusterRole")
    assert not release.has("ClusterRoleBinding")
    assert "manages namespace team-a only" in release.notes


def test_namespace_scope_defaults_to_the_release_namespace() -> None:
    release = agent("namespace-rbac-in-release-namespace")

    assert release.one("Role")["metadata"]["namespace"] == NAMESPACE
    assert env_value(release, "BROKKR_KUBERNETES__NAMESPACE") == NAMESPACE


def test_narrowed_rules_replace_the_broad_default() -> None:
    rules = [
        {
            "apiGroups": ["apps"],
            "resources": ["deployments"],
            "verbs": ["get", "list", "watch", "create", "patch"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    ]
    release = render(AGENT, {**scenarios.AGENT_REQUIRED, "rbac": {"rules": rules}})

    assert release.one("ClusterRole")["rules"] == rules


def test_rbac_can_be_left_to_the_user() -> None:
    release = agent("no-rbac")

    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        assert not release.has(kind), kind
    assert release.has("ServiceAccount")


def test_tls_with_the_system_cas_and_a_server_name_override() -> None:
    release = agent("tls-system-cas")

    assert env_value(release, "BROKKR_BROKER__TLS__ENABLED") == "true"
    assert env_value(release, "BROKKR_BROKER__TLS__SERVER_NAME") == "brokkr"
    assert "BROKKR_BROKER__TLS__CA_FILE" not in release.env()


def test_an_empty_server_name_leaves_the_setting_unset() -> None:
    release = agent("cluster-rbac")

    assert "BROKKR_BROKER__TLS__SERVER_NAME" not in release.env()
    assert env_value(release, "BROKKR_BROKER__TLS__ENABLED") == "false"


def test_mutual_tls_mounts_the_ca_and_the_client_certificate() -> None:
    release = agent("tls-ca-and-client-certificate")

    assert env_value(release, "BROKKR_BROKER__TLS__CA_FILE") == "/etc/brokkr/broker-ca/ca.crt"
    assert env_value(release, "BROKKR_BROKER__TLS__CERT_FILE") == "/etc/brokkr/client-tls/tls.crt"
    assert env_value(release, "BROKKR_BROKER__TLS__KEY_FILE") == "/etc/brokkr/client-tls/tls.key"
    assert release.volume_for("/etc/brokkr/broker-ca")["secret"]["secretName"] == "brokkr-broker-ca"
    assert release.volume_for("/etc/brokkr/client-tls")["secret"]["secretName"] == "brokkr-agent-tls"
    assert "over TLS with a client certificate" in release.notes


def test_probes_hit_healthz_and_readyz_on_the_configured_port() -> None:
    release = render(
        AGENT,
        {
            **scenarios.AGENT_REQUIRED,
            "config": {**scenarios.AGENT_REQUIRED["config"], "http": {"port": 9090}},
        },
    )
    container = release.container()

    assert container["ports"] == [{"name": "http", "containerPort": 9090, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert env_value(release, "BROKKR_HTTP__PORT") == "9090"


def test_the_agent_runs_unprivileged() -> None:
    release = agent("cluster-rbac")
    pod = release.one("Deployment")["spec"]["template"]["spec"]
    container = release.container()

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_notes_tell_the_admin_to_activate_the_agent() -> None:
    notes = agent("cluster-rbac").notes

    assert "brokkrctl agents activate <agent id>" in notes
    assert f"rollout status deployment/{FULLNAME}" in notes
    assert "It dials the broker at brokkr.example.com:50051," in notes
