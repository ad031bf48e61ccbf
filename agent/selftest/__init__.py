"""The self-test: build the probes from settings, run them, judge the site (`suite`), in a
child process with a deadline (`worker`), so a hung driver dies with it and OpenCV never stays
in the daemon. `runner` runs the probes at once, each in a thread under its own timeout."""
