"""The contract between rtplot's processes: every name and format one writes and
another reads, each defined once, with the function that writes it and the one that
reads it. Nothing outside this package spells a Redis key, a hash or stream field, a
channel, a room name or a member format (tests/test_contract.py holds every producer to
every consumer, and looks for strays).

- ``keys``: every Redis key and channel, one commented line each.
- ``fields``: the fields of each hash and stream entry.
- ``rooms``: ``Room`` (symbol, mode, view), its name and its channel.
- ``changelog``, ``members``, ``packets``: the formats of the changelog's members, the
  bars' members and the change notices, the channels' messages and stored figures.
- ``lua``: how the scripts are built (named KEYS and ARGV, fields by name) and called
  (a frozen dataclass in, one out); ``store``, ``snapshots``, ``watching``: the scripts
  and reads of the bar store, of renders, of who watches what.

Elsewhere in ``common``: the bar itself (``bars``), a view and its key (``views``), a
market and its stored form (``markets``), the Socket.IO events clients see
(``messages``).

To add a key, a field or a script (another resolution of bars, a longer catch-up), add
it here, with its writer and its reader, and a line to the contract test.
"""
