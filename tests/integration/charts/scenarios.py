"""The value combinations the charts support, named; every test that sweeps the charts uses them.

Between them they switch on every optional object and every branch that sets a setting, so a
sweep over them sees each object kind and each environment variable the charts can produce.
"""

from __future__ import annotations

from brokkr_common import keys
from tests.integration.charts.rendering import Values

ADMIN_KEY = keys.generate().plaintext
ADMIN_KEY_HASH = keys.hash_for_config(ADMIN_KEY)
AGENT_KEY = keys.generate().plaintext
DATABASE_URL = "postgresql+psycopg://brokkr:secret@db.example.com:5432/brokkr"

EXTERNAL_DATABASE: Values = {"database": {"external": {"existingSecret": "brokkr-database"}}}

BROKER: dict[str, Values] = {
    "defaults": {},
    "sqlite-on-emptydir": {"database": {"sqlite": {"persistence": {"enabled": False}}}},
    "external-database-existing-secret": {**EXTERNAL_DATABASE, "replicaCount": 3},
    "external-database-inline-secrets": {
        "database": {"external": {"url": DATABASE_URL}},
        "adminKey": {"hash": ADMIN_KEY_HASH},
        "webhooks": {"encryptionKey": "0123456789abcdef0123456789abcdef"},
    },
    "existing-secrets-for-every-secret": {
        **EXTERNAL_DATABASE,
        "adminKey": {"existingSecret": "brokkr-admin-key"},
        "webhooks": {"existingSecret": "brokkr-webhooks"},
    },
    "evaluation-postgresql": {"postgresql": {"enabled": True}, "replicaCount": 2},
    "evaluation-postgresql-on-emptydir": {
        "postgresql": {"enabled": True, "persistence": {"enabled": False}, "auth": {"password": "s3cret"}}
    },
    "tls": {"tls": {"certificateSecret": "brokkr-broker-tls"}},
    "webhooks-to-private-targets": {"config": {"webhooks": {"allowed_cidrs": "10.20.0.0/16,fd00::/8"}}},
    "mtls": {"tls": {"certificateSecret": "brokkr-broker-tls", "clientCA": {"secret": "brokkr-client-ca"}}},
    "autoscaling": {
        **EXTERNAL_DATABASE,
        "autoscaling": {"enabled": True, "targetMemoryUtilizationPercentage": 80},
    },
    "service-monitor": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "network-policy-external-database": {
        **EXTERNAL_DATABASE,
        "networkPolicy": {
            "enabled": True,
            "ingress": {"http": {"from": [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]}},
            "egress": {
                "database": {"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}]},
                "extra": [{"ports": [{"port": 443, "protocol": "TCP"}]}],
            },
        },
    },
    "network-policy-evaluation-postgresql": {
        "postgresql": {"enabled": True},
        "networkPolicy": {"enabled": True},
    },
    "network-policy-sqlite": {"networkPolicy": {"enabled": True}},
    "rest-disabled": {"config": {"rest": {"enabled": False}}},
    "pod-disruption-budget-max-unavailable": {
        **EXTERNAL_DATABASE,
        "replicaCount": 3,
        "podDisruptionBudget": {"minAvailable": "", "maxUnavailable": "34%"},
    },
    "scheduling": {
        "podAnnotations": {"example.com/team": "platform"},
        "podLabels": {"example.com/tier": "control-plane"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "brokkr", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["system"]}]}
                    ]
                }
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
            }
        ],
        "priorityClassName": "system-cluster-critical",
        "imagePullSecrets": [{"name": "registry"}],
        "image": {"digest": "sha256:" + "ab" * 32},
        "service": {"type": "LoadBalancer", "annotations": {"example.com/lb": "internal"}},
    },
}

AGENT_REQUIRED: Values = {
    "config": {"broker": {"address": "brokkr.example.com:50051"}},
    "agentKey": {"existingSecret": "brokkr-agent-key"},
}


def _agent(**values: object) -> Values:
    return {**AGENT_REQUIRED, **values}


AGENT: dict[str, Values] = {
    "cluster-rbac": AGENT_REQUIRED,
    "namespace-rbac": _agent(rbac={"scope": "namespace", "namespace": "team-a"}),
    "namespace-rbac-in-release-namespace": _agent(rbac={"scope": "namespace"}),
    "no-rbac": _agent(rbac={"create": False}),
    "inline-key": {**AGENT_REQUIRED, "agentKey": {"value": AGENT_KEY}},
    "tls-system-cas": _agent(
        config={
            "broker": {"address": "brokkr.example.com:443", "tls": {"enabled": True, "server_name": "brokkr"}}
        }
    ),
    "tls-ca-and-client-certificate": _agent(
        tls={"caSecret": {"name": "brokkr-broker-ca"}, "clientCertificateSecret": "brokkr-agent-tls"}
    ),
}
