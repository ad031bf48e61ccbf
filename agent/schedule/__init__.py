"""Sessions the site takes part in.

- `model`: the schedule model and its maths (pure: no clock reads, no files).
- `store`: the last schedule received, cached on disk, and the local fallback file.
- `presession`: which check is due before which session (pure planner over `model`).
"""
