"""Services decide: they take parsed input from routes, apply the rules of docs/api.md and
call the store. They raise `veil.server.errors.ServerError`s and never see HTTP."""
