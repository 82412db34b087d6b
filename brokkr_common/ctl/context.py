"""What every brokkrctl command shares: the connection (opened lazily), the output format, the exit
codes, and the one place API errors become a one-line message and an exit code.

The client is opened on first use, so `brokkrctl config ...` and `brokkrctl completion ...` work
without a reachable broker or a valid context.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click
from google.rpc import code_pb2

from brokkr_common.client import BrokkrClient, TlsConfig
from brokkr_common.ctl import config, output
from brokkr_common.errors import BrokkrError, Unavailable

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_TIMEOUT = 4

#: (code, summary, details) in the order `brokkrctl --help` and `docs/reference/cli.md` list them.
EXIT_CODES: tuple[tuple[int, str, str], ...] = (
    (
        EXIT_OK,
        "success",
        "`diff`: no differences. `rollout status`: every targeted agent applied the newest "
        "deployment object and reports it healthy.",
    ),
    (
        EXIT_API_ERROR,
        "the broker refused or failed the call; diff: differences; rollout: a failure",
        "The one-line error starts with the `ErrorInfo.reason` (e.g. `STACK_NOT_FOUND`), or the gRPC "
        "code when the broker sent none. `diff`: there are differences. `rollout status`: an agent "
        "failed to apply the newest deployment object or reports it FAILING. `webhooks test --wait`: "
        "the test delivery died.",
    ),
    (
        EXIT_USAGE,
        "bad usage, unreadable file or config; diff: any error",
        "Bad command line, unreadable input or config file, unknown context. `diff` exits 2 on any "
        "error (as diff(1) and `kubectl diff` do), so that 1 always means differences.",
    ),
    (
        EXIT_UNREACHABLE,
        "the broker could not be reached",
        "UNAVAILABLE or DEADLINE_EXCEEDED: wrong address, broker down, TLS mismatch, or --timeout too short. "
        "`events watch`: the stream broke and the broker stayed unreachable for --reconnect-for.",
    ),
    (
        EXIT_TIMEOUT,
        "rollout status: timed out",
        "`rollout status`: --timeout passed before every targeted agent applied the newest "
        "deployment object and reported it healthy, and nothing failed. `webhooks test --wait`: the "
        "test delivery neither succeeded nor died in time.",
    ),
)


@dataclass
class Settings:
    """What the global options said, before the config file is consulted."""

    config_path: Path
    context_name: str | None
    given: config.BrokerContext
    fmt: output.OutputFormat
    timeout: float


class Context:
    """The object click passes to every command."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.fmt = settings.fmt
        self.api_error_exit = EXIT_API_ERROR
        self._client: BrokkrClient | None = None

    @property
    def client(self) -> BrokkrClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> BrokkrClient:
        try:
            file = config.load(self.settings.config_path)
            chosen = config.selected(file, self.settings.context_name)
            connection = config.resolve(self.settings.given, chosen)
        except config.ConfigError as error:
            fail(str(error), EXIT_USAGE)
        tls = (
            TlsConfig(
                ca_file=connection.ca_file,
                cert_file=connection.client_cert,
                key_file=connection.client_key,
                server_name=connection.server_name,
            )
            if connection.tls
            else None
        )
        return BrokkrClient(connection.server, connection.key, tls=tls, timeout=self.settings.timeout)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def call(self, method: Callable[..., Any], request: Any) -> Any:
        """Call the API; on failure print one line (plus field violations) and exit."""
        try:
            return self.client.call(method, request)
        except BrokkrError as error:
            self.fail_api(error)

    def fail_api(self, error: BrokkrError) -> NoReturn:
        # Without ErrorInfo (a proxy, or the gRPC library itself failed the call) the code names it.
        reason = error.reason if error.reason != "UNKNOWN" else code_pb2.Code.Name(error.code)
        if isinstance(error, Unavailable) or error.code == code_pb2.DEADLINE_EXCEEDED:
            fail(f"{reason}: {error.message}", EXIT_UNREACHABLE)
        details = "".join(f"\n  {v.field}: {v.description}" for v in error.field_violations)
        fail(f"{reason}: {error.message}{details}", self.api_error_exit)

    def show(self, *messages: Any, single: bool = False) -> None:
        output.render(list(messages), self.fmt, single=single)

    def all_pages(self, method: Callable[..., Any], request: Any, field: str, limit: int = 0) -> list[Any]:
        """Every item of a paginated list (AIP-158), or the first `limit` when it is positive."""
        items: list[Any] = []
        while True:
            if limit > 0:
                request.page_size = min(limit - len(items), 1000)
            reply = self.call(method, request)
            items.extend(getattr(reply, field))
            if not reply.next_page_token or 0 < limit <= len(items):
                return items[:limit] if limit > 0 else items
            request.page_token = reply.next_page_token


def fail(message: str, code: int) -> NoReturn:
    output.error(message)
    sys.exit(code)


pass_ctx = click.make_pass_decorator(Context)
