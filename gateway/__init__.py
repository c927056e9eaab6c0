"""The gateway: HTTP and WebSocket API, publisher, event relay. Entry point:
``python -m gateway`` (uvicorn) or :func:`gateway.app.create_app`."""
