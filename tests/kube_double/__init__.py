"""A Kubernetes API server double, served over real HTTP to the official `kubernetes` client.

No cluster can run where Brokkr's tests run, yet the agent's Kubernetes code must be tested against
something that answers like one. This package is that something: a threaded HTTP server on
127.0.0.1 that speaks the Kubernetes REST API closely enough for `kubernetes.client` typed APIs,
`kubernetes.dynamic.DynamicClient` and raw `ApiClient.call_api` to work unmodified, and that answers
with upstream's status codes and `Status` bodies wherever the double models a behaviour.

Use it through the pytest plugin::

    pytest_plugins = ["tests.kube_double.fixtures"]

    def test_something(kube_api):           # a tests.kube_double.handle.KubeApi
        api_client = kube_api.api_client()  # configured from kube_api.kubeconfig_path

Where things are:

    server.py       HTTP, authentication, the request pipeline, the levers tests pull
    routing.py      URL -> (verb, group, version, namespace, resource, name, subresource)
    discovery.py    /version, /api, /api/v1, /apis, /apis/{group}[/{version}]
    kinds.py        the served resource types and their registry; crds.py adds CRD-defined ones
    calls.py        a routed request: its options and body, checked as upstream checks them
    verbs.py        get, list, create, update, patch, delete, deletecollection
    watching.py     watch: chunked JSON-line events, resourceVersion, 410 Gone, bookmarks
    logs.py         the `pods/log` subresource: logs tests set, cut by tailLines and limitBytes
    cluster.py      stored objects and served kinds, controllers' effects, the test helpers
    ownership.py    server-side apply and managedFields; fieldpaths.py, merging.py underneath
    patches.py      JSON merge patch and JSON patch
    validation.py   the 422s the double knows; strategies.py what a write does besides
    selectors.py    label and field selectors
    storage.py      objects, resourceVersion, write counting, the event history watches read
    faults.py       injected failures, denials, the request log
    handle.py       `KubeApi`: server + kubeconfig + clients; fixtures.py the `kube_api` fixture

Modelled (each module's docstring says precisely how):

* Discovery for the built-in kinds Namespace, ConfigMap, Secret, Service, ServiceAccount, Pod,
  PersistentVolumeClaim, Event (v1), Deployment, StatefulSet, DaemonSet, ReplicaSet (apps/v1), Job,
  CronJob (batch/v1), Ingress, NetworkPolicy (networking.k8s.io/v1), Role, RoleBinding, ClusterRole,
  ClusterRoleBinding (rbac.authorization.k8s.io/v1), CustomResourceDefinition
  (apiextensions.k8s.io/v1), HorizontalPodAutoscaler (autoscaling/v2), PodDisruptionBudget
  (policy/v1); CRD kinds once their CRD is Established (at once, or when a test says so).
* All verbs; watch as a chunked stream of ADDED/MODIFIED/DELETED events from a resourceVersion,
  with selectors, `timeoutSeconds`, bookmarks and 410 Gone after `compact()`; `/status`
  subresources; `pods/log` (text set by `set_log`, with `container`, `previous`, `tailLines`,
  `limitBytes`); field selectors on Events' `involvedObject.*`, `reason`, `type` and Pods'
  `status.phase`, `spec.nodeName`; dry run; optimistic concurrency; generation;
  uid/creationTimestamp/resourceVersion; finalizers holding a deletion; namespace cascade.
* Server-side apply with field ownership, conflicts, force, shared ownership, removal of fields an
  applier drops, `before-first-apply`, no-op detection; merge and JSON patches; Update managers.
* Validation (422) for a documented set of rules; `fieldValidation` for unknown top-level and
  metadata fields (Warn by default for non-apply writes; server-side apply refuses unknown fields
  with upstream's own 500 "failed to create typed patch object").
* Failure injection (status codes, hangs, dropped connections), RBAC-like 403s, a request log.

Not modelled, on purpose:

* For watches: label changes turning into ADDED/DELETED for a selector, periodic bookmarks,
  `sendInitialEvents`, the watch cache's own window.
* Aggregated discovery, OpenAPI (/openapi/v2 and /openapi/v3 answer 404), protobuf and CBOR,
  `resourceVersion` semantics on reads (lists are always current).
* Defaulting (no `replicas: 1`, no Service `clusterIP`, no `imagePullPolicy`), admission, quotas,
  controllers (nothing rolls out, schedules or garbage-collects: tests set status with
  `set_status`), ownerReference cascades, a namespace's `Terminating` phase, CRD finalizers.
* Schemas below the top level: nested unknown fields are kept, custom resources are schemaless
  (not pruned, not validated, all their lists atomic), no version conversion.
* Strategic merge patch semantics (served as JSON merge patch), unions, `$patch` directives,
  list-type markers in CRD schemas, the ten-updater cap on managedFields, client-side-apply
  migration, `managedFields` sent in a PUT or non-apply patch (ignored, not honoured).
* Validation beyond the rules listed in `validation`.
"""
