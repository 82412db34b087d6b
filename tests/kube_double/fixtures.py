"""The `kube_api` pytest fixture: a running kube double, a kubeconfig for it, and clients.

Enable it in a test module (or a root conftest) with::

    pytest_plugins = ["tests.kube_double.fixtures"]

`kube_api` is function-scoped: every test gets a fresh cluster (the default namespaces and nothing
else) on its own port, and every `ApiClient` it handed out is closed before the server stops.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube_double.handle import KubeApi


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[KubeApi]:
    """A running kube double for one test."""
    with KubeApi(tmp_path) as api:
        yield api
        assert not api.internal_errors, "the kube double failed:\n" + "\n".join(api.internal_errors)
