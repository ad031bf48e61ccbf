"""The centre's web dashboard (`edge-agent centre serve --http HOST:PORT`): accounts and
sessions, the fleet as JSON and server-sent events, operator commands, and the static page.

starlette, uvicorn and argon2 are imported only inside this package: a site's mini-PC never
installs them (the `centre` extra)."""
