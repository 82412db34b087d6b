"""The Brokkr agent: runs in each cluster, dials out to the broker, applies stacks with server-side
apply, and reports results, health and heartbeats."""
