"""What rtplot's services share, and nothing else.

- ``settings``: the typed settings object every process builds once at start.
- ``keys``: every Redis key and channel name, one commented line each.
- ``symbols``: the symbol allowlist and its normal form.
- ``bars``: the 1-minute bar schema and its wire encoding.
- ``messages``: Socket.IO event names and payload shapes, and the JSON codec.
"""
