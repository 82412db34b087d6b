"""docs/how-to/install-with-helm.md works as written against the charts in this tree.

The guide's shell blocks are read as a user would run them: each `helm install`/`helm upgrade` is
rendered with exactly its `--set` flags, the Secrets it names must be created earlier in the guide
with the keys the chart reads, and the objects the guide later inspects must be ones the release
creates. A `--set` mentioned in prose must name a key one of the charts has.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import helm_python as helm

from tests.integration.charts.rendering import AGENT, BROKER, CHARTS, Release, chart, render

GUIDE = CHARTS.parent / "docs" / "how-to" / "install-with-helm.md"
CHART_BY_ARGUMENT = {"charts/brokkr-broker": BROKER, "charts/brokkr-agent": AGENT}
#: helm flags the guide may use besides --set, and whether each takes an argument.
HELM_FLAGS = {"--namespace": True, "--kube-context": True, "--reuse-values": False}
#: (Secret name, key) value pairs each chart reads Secrets through.
SECRET_REFERENCES = {
    BROKER: [
        ("database.external.existingSecret", "database.external.existingSecretKey"),
        ("adminKey.existingSecret", "adminKey.existingSecretKey"),
        ("webhooks.existingSecret", "webhooks.existingSecretKey"),
        ("tls.clientCA.secret", "tls.clientCA.key"),
    ],
    AGENT: [
        ("agentKey.existingSecret", "agentKey.existingSecretKey"),
        ("tls.caSecret.name", "tls.caSecret.key"),
    ],
}


def shell_commands(markdown: str) -> list[list[str]]:
    """The commands of the guide's ```sh blocks, continuation lines joined, as argument lists."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = (
            merge(merged[key], value)
            if isinstance(value, dict) and isinstance(merged.get(key), dict)
            else value
        )
    return merged


def lookup(values: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        values = values[part]
    return values


@dataclass
class Walkthrough:
    """What following the guide leaves behind: Secrets by name with their keys, and releases."""

    secrets: dict[str, set[str]] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    charts: dict[str, Path] = field(default_factory=dict)
    releases: dict[str, Release] = field(default_factory=dict)

    def kubectl(self, words: list[str]) -> None:
        if "create" not in words or "secret" not in words:
            return
        kind, name = words[words.index("secret") + 1 : words.index("secret") + 3]
        if kind == "tls":
            self.secrets[name] = {"tls.crt", "tls.key"}
            return
        assert kind == "generic", words
        sources = [w.split("=", 1)[1] for w in words if w.startswith(("--from-literal=", "--from-file="))]
        self.secrets[name] = {source.split("=", 1)[0] for source in sources}

    def helm(self, words: list[str]) -> None:
        action, release, chart_argument, *flags = words[1:]
        assert action in {"install", "upgrade"}, words
        chart_path = CHART_BY_ARGUMENT[chart_argument]
        values: dict[str, Any] = {}
        namespace = "default"
        flags_left = iter(flags)
        for flag in flags_left:
            if flag == "--set":
                values = merge(values, helm.parse_set_string(next(flags_left)))
            elif flag == "--reuse-values":
                values = merge(self.values[release], values)
            elif flag == "--namespace":
                namespace = next(flags_left)
            else:
                assert flag in HELM_FLAGS, f"the guide uses {flag}; teach this test what it means"
                if HELM_FLAGS[flag]:
                    next(flags_left)
        self.values[release] = values
        self.charts[release] = chart_path
        self.releases[release] = render(chart_path, values, release=release, namespace=namespace)
        self.check_secrets(release)

    def check_secrets(self, release: str) -> None:
        effective = chart(self.charts[release]).merge_values(self.values[release])
        for name_path, key_path in SECRET_REFERENCES[self.charts[release]]:
            name = lookup(effective, name_path)
            if name:
                key = lookup(effective, key_path)
                assert name in self.secrets, (
                    f"{release}: {name_path}={name}, but the guide creates no such Secret"
                )
                assert key in self.secrets[name], (
                    f"{release}: reads key {key} of Secret {name}: {self.secrets[name]}"
                )

    def objects_named(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for r in self.releases.values() for o in r.all(kind)}


def follow_the_guide() -> Walkthrough:
    walkthrough = Walkthrough()
    for words in shell_commands(GUIDE.read_text()):
        if words[0] == "kubectl":
            walkthrough.kubectl(words)
        elif words[0] == "helm":
            walkthrough.helm(words)
    return walkthrough


def test_every_helm_command_in_the_guide_installs_with_the_secrets_it_created() -> None:
    walkthrough = follow_the_guide()

    assert set(walkthrough.charts.values()) == {BROKER, AGENT}
    broker = walkthrough.releases["brokkr-broker"]
    assert broker.one("Deployment")["spec"]["replicas"] == 2
    assert broker.has("PodDisruptionBudget")
    assert broker.one("Service")["spec"]["type"] == "LoadBalancer"
    agent = walkthrough.releases["brokkr-agent"]
    env = {e["name"]: e.get("value") for e in agent.container()["env"]}
    assert env["BROKKR_BROKER__ADDRESS"] == "brokkr.example.com:50051"
    assert env["BROKKR_BROKER__TLS__CA_FILE"] == "/etc/brokkr/broker-ca/ca.crt"


def test_the_objects_the_guide_inspects_are_the_ones_the_charts_create() -> None:
    walkthrough = follow_the_guide()
    deployments, services = walkthrough.objects_named("Deployment"), walkthrough.objects_named("Service")
    inspected = 0

    for words in shell_commands(GUIDE.read_text()):
        if words[0] != "kubectl":
            continue
        for word in words:
            if word.startswith("deployment/"):
                assert word.removeprefix("deployment/") in deployments, words
                inspected += 1
        if "get" in words and "service" in words:
            assert words[words.index("service") + 1] in services, words
            inspected += 1
    assert inspected >= 3


def test_every_value_the_guide_mentions_exists_in_a_chart() -> None:
    mentioned = re.findall(r"--set ([\w.]+)=", GUIDE.read_text())
    keys = {
        path
        for chart_path in (BROKER, AGENT)
        for path in _dotted_keys(json.loads((chart_path / "values.schema.json").read_text()))
    }

    assert mentioned, "the guide sets no values"
    assert [m for m in mentioned if m not in keys] == []


def _dotted_keys(schema: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, child in schema.get("properties", {}).items():
        keys.add(prefix + name)
        keys |= _dotted_keys(child, f"{prefix}{name}.")
    return keys
