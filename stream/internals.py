"""Where rtplot stream relies on a part of yfinance that is not its public API: the
protobuf message Yahoo's streamer sends, ``yfinance.pricing_pb2.PricingData`` (generated
from yfinance's ``pricing.proto``).

rtplot speaks the streamer's protocol itself (stream.connection says why not through
``yfinance.AsyncWebSocket``) and decodes each frame with yfinance's message, so the
field numbers and types stay the ones yfinance keeps in step with Yahoo. The fields read
are checked at start-up (``check``): a yfinance whose message lacks one, or types it
otherwise, stops the service with a message instead of decoding garbage. Held to
yfinance's own decoder (``BaseWebSocket._decode_message``) on its real recorded frame by
tests/test_stream_frames.py.
"""

from typing import Any

from google.protobuf.descriptor import FieldDescriptor

TESTED = {"yfinance": ("1.7",)}

# The fields rtplot reads: name -> (number, protobuf type), as pricing.proto has them.
FIELDS = {
    "id": (1, FieldDescriptor.TYPE_STRING),
    "price": (2, FieldDescriptor.TYPE_FLOAT),
    "time": (3, FieldDescriptor.TYPE_SINT64),
    "market_hours": (7, FieldDescriptor.TYPE_INT32),
    "day_volume": (9, FieldDescriptor.TYPE_SINT64),
    "last_size": (22, FieldDescriptor.TYPE_SINT64),
    "price_hint": (27, FieldDescriptor.TYPE_SINT64),
}


class UnusableProto(RuntimeError):
    """The installed yfinance's PricingData is not the message rtplot was built for."""


def pricing_data() -> Any:
    """yfinance's PricingData class (imported here only)."""
    from yfinance.pricing_pb2 import PricingData

    return PricingData


def check() -> None:
    """Raise UnusableProto, naming the field, unless every field rtplot reads is there
    with its number and type."""
    try:
        descriptor = pricing_data().DESCRIPTOR
    except ImportError as exc:
        raise UnusableProto(f"yfinance.pricing_pb2 cannot be imported: {exc}") from None
    for name, (number, kind) in FIELDS.items():
        field = descriptor.fields_by_name.get(name)
        if field is None or field.number != number or field.type != kind:
            raise UnusableProto(
                f"yfinance's PricingData.{name} is not field {number} of type {kind}: "
                "this yfinance speaks another version of Yahoo's stream"
            )
