"""The agent's Kubernetes layer: the only code in Brokkr that imports `kubernetes`.

The runtime uses one class, `Cluster` (in `cluster`). Underneath, one concept per module:

* `client`: `KubeClient`, raw requests through the official client, off the event loop, with
  failures classified (`agent.reconcile.errors`).
* `retrying`: `RetryPolicy`, backoff with full jitter for temporary failures, Retry-After honoured.
* `discovery`: which kinds the cluster serves, under which URLs; the planner's `Discovery`.
* `recording`: the stacks' ApplySet parent Secrets, read, written, listed after a restart.
* `members`: listing a stack's ApplySet members by label.
* `applying`: carrying out apply and removal plans: dry run, waves, prune, record.
* `objects`: one request per object, kind by kind, naming every object that failed.
* `establishing`: waiting for a stack's CRDs to be Established.
* `pruning`: deleting what a stack no longer holds.
* `assessing`: reading objects (and workloads' pods) back for `agent.health`.

Planning is not here: `agent.reconcile` decides, pure; this package reads the cluster before and
carries the decision out after. See docs/explanation/applying.md.
"""

from agent.kube.cluster import Cluster
from agent.kube.retrying import RetryPolicy

__all__ = ["Cluster", "RetryPolicy"]
