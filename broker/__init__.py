"""The Brokkr broker: keeps desired state, answers every client, holds agent sessions."""
