"""Pure check logic: the result model, verdict rules and the concurrent runner."""
