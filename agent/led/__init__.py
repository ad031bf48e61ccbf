"""The status LED: its patterns and settings (`patterns`, pure), the sysfs driver
(`driver`), and which pattern the site's state shows (`status`)."""
