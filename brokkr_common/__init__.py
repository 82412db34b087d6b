"""Code shared by the broker, the agent and brokkrctl: generated API stubs, errors, keys, the
session protocol, logging and settings helpers. Imports neither `broker` nor `agent`."""
