"""The web dashboard for operators: static files served by the api, using the public API only."""
