"""The process's dealings with the operating system, shared by the daemon, the self-test and
attendance children and the CLI: child processes that die with their parent and have bounded
output (`workers`), systemd's notify and watchdog (`sdnotify`), one daemon per state
directory (`lockfile`), journald-friendly logging (`logs`)."""
