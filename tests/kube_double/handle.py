"""`KubeApi`: a running kube double as a test holds it, with a kubeconfig and official clients.

Kept apart from `fixtures` so that test modules can import the type without importing the pytest
plugin before pytest registers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

import yaml
from kubernetes import client, config

from tests.kube_double.server import KubeApiServer


class KubeApi(KubeApiServer):
    """A kube double plus what a test needs to reach it with the official client."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        #: A kubeconfig for the double: plain HTTP, bearer-token user, `default` namespace.
        self.kubeconfig_path = directory / "kubeconfig"
        self._clients: list[client.ApiClient] = []

    def start(self) -> Self:
        super().start()
        self.kubeconfig_path.write_text(yaml.safe_dump(self.kubeconfig()))
        return self

    def stop(self) -> None:
        for api_client in self._clients:
            api_client.close()
        self._clients.clear()
        super().stop()

    def kubeconfig(self) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kube-double", "cluster": {"server": self.url}}],
            "users": [{"name": "kube-double", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "kube-double",
                    "context": {"cluster": "kube-double", "user": "kube-double", "namespace": "default"},
                }
            ],
            "current-context": "kube-double",
        }

    def api_client(self) -> client.ApiClient:
        """A `kubernetes.client.ApiClient` configured from `kubeconfig_path`; closed at teardown."""
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig_path), client_configuration=configuration)
        api_client = client.ApiClient(configuration)
        self._clients.append(api_client)
        return api_client
