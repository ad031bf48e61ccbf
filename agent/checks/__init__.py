"""Pure check logic: the result and check-run models (`model`: `CheckResult`, `CheckRun`,
`Trigger`), verdict rules and the concurrent runner."""
