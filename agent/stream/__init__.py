"""The agent's end of the session: dial out to the broker, keep the stream up, drive the protocol."""
