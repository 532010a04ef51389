"""The gateway: stateless python-socketio servers relaying updates to subscribers."""
