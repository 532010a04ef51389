"""What rtplot's services share, and nothing else.

- ``settings``: the typed settings object every process builds once at start.
- ``contract``: every name and format that crosses a process boundary (Redis keys,
  fields, channels, rooms, members, the scripts), each written and read in one place.
- ``symbols``: the symbol allowlist and its normal form.
- ``bars``: the 1-minute bar.
- ``views``: the ways one symbol can be drawn, and each one's key.
- ``messages``: Socket.IO event names and payload shapes, and the JSON codec.
"""
