"""The room-channel book, without Redis: batches, confirmations in order, and waiters
released only by the subscription that makes their room heard."""

from gateway.channels import SUBSCRIBE, UNSUBSCRIBE, ChannelBook


class Waiter:
    def __init__(self) -> None:
        self.ready = False

    def set(self) -> None:
        self.ready = True


def connected() -> ChannelBook:
    book = ChannelBook()
    book.connect()
    return book


def test_rooms_coming_into_use_go_out_in_one_batch() -> None:
    book = connected()
    for room in ("bars:A", "bars:B", "bars:A", "figure:A"):
        book.want(room)
    assert book.pending()
    assert book.batch() == (["bars:A", "bars:B", "figure:A"], [])
    assert not book.pending() and book.batch() == ([], [])
    book.want("bars:A")  # sent already: nothing more to send
    assert book.batch() == ([], [])


def test_a_waiter_is_released_by_its_rooms_confirmation() -> None:
    book = connected()
    book.want("bars:A")
    waiter = Waiter()
    book.wait("bars:A", waiter)
    book.batch()
    assert not book.ready("bars:A")
    book.confirmed(SUBSCRIBE, "bars:B")
    assert not waiter.ready
    book.confirmed(SUBSCRIBE, "bars:A")
    assert waiter.ready and book.ready("bars:A")


def test_a_room_dropped_and_wanted_again_waits_for_the_second_subscription() -> None:
    book = connected()
    book.want("bars:A")
    book.batch()
    book.unwant("bars:A")
    assert book.batch() == ([], ["bars:A"])
    book.want("bars:A")
    assert book.batch() == (["bars:A"], [])
    waiter = Waiter()
    book.wait("bars:A", waiter)
    book.confirmed(SUBSCRIBE, "bars:A")  # the first subscription: an unsubscribe follows
    assert not waiter.ready and not book.ready("bars:A")
    book.confirmed(UNSUBSCRIBE, "bars:A")
    assert not waiter.ready
    book.confirmed(SUBSCRIBE, "bars:A")
    assert waiter.ready and book.ready("bars:A")


def test_a_room_dropped_before_its_batch_went_out_costs_nothing() -> None:
    book = connected()
    book.want("bars:A")
    book.unwant("bars:A")
    assert book.batch() == ([], [])
    book.want("bars:B")
    book.batch()
    book.confirmed(SUBSCRIBE, "bars:B")
    book.unwant("bars:B")
    book.want("bars:B")  # back before the unsubscribe went out: stays subscribed
    assert book.batch() == ([], []) and book.ready("bars:B")


def test_a_new_connection_subscribes_every_room_in_use_and_keeps_the_waiters() -> None:
    book = connected()
    book.want("bars:A")
    book.want("bars:B")
    book.batch()
    book.confirmed(SUBSCRIBE, "bars:A")
    waiter = Waiter()
    book.wait("bars:B", waiter)
    book.disconnect()
    assert book.batch() == ([], [])  # nothing goes out on a dead connection
    book.want("bars:C")
    book.connect()
    assert not book.ready("bars:A")
    assert book.batch() == (["bars:A", "bars:B", "bars:C"], [])
    book.confirmed(SUBSCRIBE, "bars:B")
    assert waiter.ready


def test_a_waiter_that_gave_up_is_forgotten() -> None:
    book = connected()
    waiter = Waiter()
    book.wait("bars:A", waiter)
    book.stop_waiting("bars:A", waiter)
    assert book.waiters == {}
