"""Starting python-socketio's client manager with the server (see ``gateway.internals``
for the terms of this reach).

python-socketio initialises its client manager, which starts the message-queue
listener, when the first client connects, by way of ``Server.manager_initialized``.
A gateway that no client has reached yet would then relay nothing and could not say
whether its listener works; setting the flag first and initialising now does what the
first connection would have done, once.
"""

from typing import Any

from gateway import internals


def start_manager(sio: Any) -> bool:
    """Initialise the manager now; False on the public path (it starts with the first
    connection)."""
    if not internals.enabled():
        return False
    if not sio.manager_initialized:
        sio.manager_initialized = True
        sio.manager.initialize()
    return True
