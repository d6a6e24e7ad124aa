"""The Falcon REST API: `create_app(config)` in app.py."""
