"""Kubernetes API failures: which ones the agent retries, and what it reports for the others."""

from __future__ import annotations

import json

import pytest
from google.rpc import code_pb2

from agent.reconcile.errors import ClusterError, PermanentError, TemporaryError, classify, transport_error
from brokkr_common.session.reports import ResourceError
from brokkr_common.session.resource_key import ResourceKey

KEY = ResourceKey("apps", "v1", "Deployment", "shop", "web")


def status(code: int, reason: str, message: str, **details: object) -> str:
    """A `Status` body as the API server sends it."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    return json.dumps({**body, "code": code})


STALE = status(
    409,
    "Conflict",
    'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; '
    "please apply your changes to the latest version and try again",
    name="web",
    group="apps",
    kind="deployments",
)
APPLY_CONFLICT = status(
    409,
    "Conflict",
    'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas',
    causes=[
        {
            "reason": "FieldManagerConflict",
            "message": 'conflict with "kubectl-edit"',
            "field": ".spec.replicas",
        }
    ],
)
INVALID = status(
    422,
    "Invalid",
    'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0',
    name="web",
    group="apps",
    kind="Deployment",
    causes=[{"reason": "FieldValueInvalid", "message": "Invalid value: -1", "field": "spec.replicas"}],
)
NO_NAMESPACE = status(404, "NotFound", 'namespaces "shop" not found', name="shop", kind="namespaces")
UNSERVED = status(404, "NotFound", "the server could not find the requested resource")
FORBIDDEN = status(
    403,
    "Forbidden",
    'deployments.apps "web" is forbidden: User "system:serviceaccount:brokkr-system:brokkr-agent" '
    'cannot patch resource "deployments" in API group "apps" in the namespace "shop"',
    name="web",
    group="apps",
    kind="deployments",
)
TERMINATING = status(
    403,
    "Forbidden",
    'deployments.apps "web" is forbidden: unable to create new content in namespace shop because it is being '
    "terminated",
    name="web",
    group="apps",
    kind="deployments",
    causes=[{"reason": "NamespaceTerminating", "message": "namespace shop is being terminated", "field": ""}],
)
THROTTLED = status(429, "TooManyRequests", "Too many requests, please try again later.", retryAfterSeconds=2)

ALREADY_EXISTS = status(409, "AlreadyExists", 'deployments.apps "web" already exists')
ETCD = status(500, "InternalError", "Internal error occurred: etcdserver: leader changed")
SHUTTING_DOWN = status(503, "ServiceUnavailable", "apiserver is shutting down")
TIMEOUT = status(504, "Timeout", "Timeout: request did not complete within 60s", retryAfterSeconds=1)
UNAUTHORIZED = status(401, "Unauthorized", "Unauthorized")
BAD_REQUEST = status(400, "BadRequest", "json: cannot unmarshal string into Go value of type int32")
NO_OBJECT = status(
    404, "NotFound", 'deployments.apps "web" not found', name="web", group="apps", kind="deployments"
)
NOT_ALLOWED = status(405, "MethodNotAllowed", 'patch is not supported on resources of kind "bindings"')
HTTP_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"

CASES = [
    # (what, HTTP status, body, Retry-After, class, reason, delay)
    ("stale resourceVersion", 409, STALE, None, TemporaryError, "CONFLICT", None),
    ("create race", 409, ALREADY_EXISTS, None, TemporaryError, "ALREADY_EXISTS", None),
    ("field manager conflict", 409, APPLY_CONFLICT, None, PermanentError, "FIELD_MANAGER_CONFLICT", None),
    ("throttled, header wins", 429, THROTTLED, "5", TemporaryError, "TOO_MANY_REQUESTS", 5.0),
    ("throttled, details only", 429, THROTTLED, None, TemporaryError, "TOO_MANY_REQUESTS", 2.0),
    ("throttled, date header", 429, THROTTLED, HTTP_DATE, TemporaryError, "TOO_MANY_REQUESTS", 2.0),
    ("throttled for hours", 429, "", "86400", TemporaryError, "HTTP_429", 300.0),
    ("internal error", 500, ETCD, None, TemporaryError, "INTERNAL_ERROR", None),
    ("proxy page", 502, b"<html>Bad Gateway</html>", None, TemporaryError, "HTTP_502", None),
    ("unavailable", 503, SHUTTING_DOWN, None, TemporaryError, "SERVICE_UNAVAILABLE", None),
    ("timeout", 504, TIMEOUT, None, TemporaryError, "TIMEOUT", 1.0),
    ("expired token", 401, UNAUTHORIZED, None, TemporaryError, "UNAUTHORIZED", None),
    ("invalid object", 422, INVALID, None, PermanentError, "INVALID_OBJECT", None),
    ("bad request", 400, BAD_REQUEST, None, PermanentError, "INVALID_OBJECT", None),
    ("missing namespace", 404, NO_NAMESPACE, None, PermanentError, "MISSING_NAMESPACE", None),
    ("kind not served", 404, UNSERVED, None, PermanentError, "MISSING_KIND", None),
    ("object not found", 404, NO_OBJECT, None, PermanentError, "NOT_FOUND", None),
    ("forbidden", 403, FORBIDDEN, None, PermanentError, "FORBIDDEN", None),
    ("namespace terminating", 403, TERMINATING, None, TemporaryError, "NAMESPACE_TERMINATING", None),
    ("method not allowed", 405, NOT_ALLOWED, None, PermanentError, "METHOD_NOT_ALLOWED", None),
    ("too large", 413, None, None, PermanentError, "HTTP_413", None),
]


@pytest.mark.parametrize(
    ("http", "body", "retry_after", "expected", "reason", "delay"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_failures_are_classified(
    http: int,
    body: object,
    retry_after: str | None,
    expected: type[ClusterError],
    reason: str,
    delay: float | None,
) -> None:
    error = classify(http, body, retry_after)
    assert type(error) is expected
    assert error.reason == reason
    assert getattr(error, "delay", None) == delay


def test_the_servers_message_is_kept_for_people() -> None:
    assert classify(422, INVALID).message.startswith('Deployment.apps "web" is invalid: spec.replicas')
    assert classify(422, json.loads(INVALID)).message == classify(422, INVALID.encode()).message
    assert classify(503, None).message == "HTTP 503"


@pytest.mark.parametrize("body", ["[1, 2]", '{"reason": 42, "message": ["x"], "details": "y"}', "{", 7])
def test_a_body_that_is_no_status_still_classifies_by_http_status(body: object) -> None:
    assert classify(409, body).reason == "HTTP_409"
    assert isinstance(classify(409, body), TemporaryError)


def test_no_answer_at_all_is_temporary() -> None:
    error = transport_error(ConnectionRefusedError(111, "Connection refused"))
    assert isinstance(error, TemporaryError)
    assert error.reason == "UNREACHABLE"
    assert "Connection refused" in error.message


def test_a_failure_names_its_object_in_the_nack() -> None:
    assert classify(422, INVALID).resource_error(KEY) == ResourceError(
        KEY, "INVALID_OBJECT", json.loads(INVALID)["message"], temporary=False
    )
    assert classify(503, None).resource_error(KEY).temporary


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (classify(422, INVALID), code_pb2.INVALID_ARGUMENT),
        (classify(403, FORBIDDEN), code_pb2.PERMISSION_DENIED),
        (classify(404, UNSERVED), code_pb2.FAILED_PRECONDITION),
        (classify(409, APPLY_CONFLICT), code_pb2.FAILED_PRECONDITION),
        (classify(503, None), code_pb2.UNAVAILABLE),
    ],
)
def test_the_nack_status_carries_a_matching_code_and_the_reason(error: ClusterError, code: int) -> None:
    brokkr_error = error.status_error()
    assert brokkr_error.code == code
    assert brokkr_error.reason == error.reason


def test_a_temporary_failure_given_up_on_tells_the_broker_when_to_retry() -> None:
    assert classify(429, THROTTLED).status_error().retry_after_seconds == 2.0


def test_several_bad_objects_become_one_error_naming_all_of_them() -> None:
    other = ResourceKey("", "v1", "ConfigMap", "shop", "settings")
    errors = [
        ResourceError(KEY, "MISSING_KIND", "not served"),
        ResourceError(other, "INVALID_MANIFEST", "bad"),
    ]
    error = PermanentError.for_objects(errors)
    assert error.reason == "MISSING_KIND"
    assert error.message == "apps/v1/Deployment/shop/web: not served (and 1 more)"
    assert error.errors == tuple(errors)
