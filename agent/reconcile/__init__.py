"""Pure planning of what the agent does to its cluster: desired + recorded -> ordered actions.

Nothing here performs I/O or imports `kubernetes`; `agent.kube` reads the cluster, calls these
functions, and carries out what they return. Objects are plain dicts (parsed Kubernetes JSON).

Modules, one concept each:

* `kinds`: group-kinds, object keys, and which kinds are namespaced (discovery + the stack's CRDs).
* `ordering`: apply waves and Helm's kind order; the reverse for deletion.
* `applyset`: the ApplySet parent that records what a stack holds; `parse_parent` rebuilds the
  Hello after a restart.
* `pruning`: which listed members of a stack's ApplySet to delete, and in which order.
* `plan`: `plan_apply` / `plan_removal`, the whole change of one stack.
* `errors`: Kubernetes API failures classified as temporary (retry) or permanent (nack).
"""
