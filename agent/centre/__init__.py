"""The centre: fleet state, reports, schedule publishing."""
