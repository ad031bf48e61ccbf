"""Remote commands: signed envelopes, verification, replay store, actions, audit."""
