"""The discovery documents: /version, /api, /api/v1, /apis, /apis/{group} and /apis/{group}/{version}.

Clients (the dynamic client, kubectl) find out which kinds exist and whether they are namespaced by
reading these before they build any URL, so they are generated from the live `Registry`: a CRD shows
up here the moment it is Established and disappears when it is deleted. Only the legacy (unaggregated)
JSON documents are served; /openapi/v2 and /openapi/v3 answer 404, as on a server with OpenAPI off.
"""

from __future__ import annotations

from tests.kube_double.errors import JSON
from tests.kube_double.kinds import Registry

#: The Kubernetes release the double claims to be (the one kubernetes-client 37 is generated from).
KUBERNETES_VERSION = {
    "major": "1",
    "minor": "37",
    "gitVersion": "v1.37.0",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.25.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def version() -> JSON:
    return dict(KUBERNETES_VERSION)


def core_versions(server_address: str) -> JSON:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group(name: str, versions: list[str]) -> JSON:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def group_list(registry: Registry) -> JSON:
    groups = [_group(name, versions) for name, versions in registry.groups().items()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def group(registry: Registry, name: str) -> JSON | None:
    versions = registry.groups().get(name)
    if not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def resource_list(registry: Registry, group_name: str, version_name: str) -> JSON | None:
    types = registry.in_group_version(group_name, version_name)
    if not types:
        return None
    resources = [entry for t in sorted(types, key=lambda t: t.plural) for entry in t.discovery_entries()]
    group_version = f"{group_name}/{version_name}" if group_name else version_name
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }
