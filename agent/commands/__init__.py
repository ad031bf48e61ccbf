"""Remote commands at the site: verify (the envelope rules are in agent.contract.envelope),
remember ids against replays (`store`), run the actions (`actions`) on a small pool
(`service`), plug into the daemon (`host`). The centre's side (signing, sending, collecting
replies) is agent.centre.sender."""
