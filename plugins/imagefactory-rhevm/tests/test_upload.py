"""The imageio upload against the real ovirt-imageio daemon, with tickets made as the engine's
host agent makes them: sparse files, a connection cut in the middle, the proxy URL, refusals,
cancellation."""

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from imagefactory_core.plugin import BuildCancelled, BuildError, ImageView
from imagefactory_core.testing import RecordingBuildContext
from imagefactory_rhevm.upload import PIECE, Piece, open_destination, pieces, upload

from tests.services.ovirt_support.engine import Engine
from tests.services.ovirt_support.relay import cutting_relay

pytestmark = pytest.mark.slow  # a real imageio daemon

MIB = 1024 * 1024
NewContext = Callable[..., RecordingBuildContext]


@pytest.fixture
def ticket(ovirt_engine: Engine, tmp_path: Path) -> Iterator[Callable[..., tuple[str, Path]]]:
    """Make a write ticket on a new empty file of `size` bytes: (transfer URL, file)."""
    made: list[str] = []

    def make(size: int) -> tuple[str, Path]:
        volume = tmp_path / f"volume-{len(made)}"
        with volume.open("wb") as out:
            out.truncate(size)
        ticket_id = str(uuid.uuid4())
        made.append(ticket_id)
        return ovirt_engine.imageio.add_ticket(ticket_id, volume, size), volume

    yield make
    for ticket_id in made:
        ovirt_engine.imageio.remove_ticket(ticket_id)


def test_pieces_are_data_extents_and_holes(raw_target: ImageView) -> None:
    found = pieces(raw_target.body_path)
    assert found[0] == Piece(0, 2 * MIB)
    assert found[1] == Piece(2 * MIB, 61 * MIB, zero=True)
    # 63-65 MiB: one data extent crossing no piece limit; the holes are zeroed, not sent.
    assert Piece(63 * MIB, 2 * MIB) in found
    assert sum(piece.length for piece in found) == raw_target.body_path.stat().st_size
    assert all(piece.length <= PIECE for piece in found if not piece.zero)


def test_a_sparse_raw_file_arrives_whole_sending_only_its_data(
        new_context: NewContext, ticket: Callable[..., tuple[str, Path]],
        raw_target: ImageView, ovirt_engine: Engine) -> None:
    body = raw_target.body_path
    url, volume = ticket(body.stat().st_size)
    volume.write_bytes(b"\xff" * body.stat().st_size)  # not zero, as on block storage
    ctx = new_context()
    destination = open_destination(ctx, url, None, True)
    assert (destination.url, destination.writers) == (url, 1)  # a file: one writer
    assert destination.can_zero and destination.can_flush
    upload(ctx, body, destination, True)
    assert volume.read_bytes() == body.read_bytes()
    percents = [percent for percent, _ in ctx.reports]
    assert percents == sorted(percents) and percents[-1] == 100


def test_a_connection_cut_mid_way_resumes_where_it_broke(
        new_context: NewContext, ticket: Callable[..., tuple[str, Path]],
        qcow2_target: ImageView, ovirt_engine: Engine) -> None:
    """The connection is reset once 3 MiB have gone through, in the middle of the piece that
    holds the data: that piece is sent again on a new connection, the one before it (the qcow2
    header) is not."""
    body = qcow2_target.body_path
    size = body.stat().st_size
    url, volume = ticket(size)
    ticket_path = url.removeprefix(ovirt_engine.imageio.remote_url)
    with cutting_relay(ovirt_engine.imageio.remote_url, cut_after=3 * MIB) as relay:
        ctx = new_context()
        upload(ctx, body, open_destination(ctx, relay.url + ticket_path, None, True), True)
    assert relay.cuts == 1
    assert volume.read_bytes() == body.read_bytes()
    resent = [line for line in ctx.lines if "failed (" in line and "sending again" in line]
    assert len(resent) == 1, ctx.lines
    assert resent[0].startswith("sending bytes 262144-")
    assert "failed (ConnectionError: " in resent[0]
    # Everything once, plus what the broken attempt got through (and request heads).
    assert size < relay.forwarded < size + 3 * MIB + 64 * 1024


def test_the_proxy_url_when_the_imageio_host_cannot_be_reached(
        new_context: NewContext, ticket: Callable[..., tuple[str, Path]],
        qcow2_target: ImageView) -> None:
    url, volume = ticket(qcow2_target.body_path.stat().st_size)
    unreachable = "http://127.0.0.1:9" + url[url.index("/images/"):]
    ctx = new_context()
    destination = open_destination(ctx, unreachable, url, True)
    assert destination.url == url
    assert any(line.startswith(f"imageio at {unreachable} cannot be reached") for line in
               ctx.lines)
    upload(ctx, qcow2_target.body_path, destination, True)
    assert volume.read_bytes() == qcow2_target.body_path.read_bytes()


def test_writing_past_the_ticket_is_refused_with_imageios_reason(
        new_context: NewContext, ticket: Callable[..., tuple[str, Path]],
        qcow2_target: ImageView) -> None:
    url, _ = ticket(MIB)
    ctx = new_context()
    with pytest.raises(BuildError, match=r"imageio refused PUT .* \(HTTP 416\): .*"):
        upload(ctx, qcow2_target.body_path, open_destination(ctx, url, None, True), True)


def test_an_unknown_ticket_is_refused(new_context: NewContext, ovirt_engine: Engine) -> None:
    with pytest.raises(BuildError, match=r"imageio refused OPTIONS .* \(HTTP 403\)"):
        open_destination(new_context(), f"{ovirt_engine.imageio.remote_url}/images/nope",
                         None, True)


def test_imageio_on_an_address_the_operator_did_not_allow(
        new_context: NewContext, ticket: Callable[..., tuple[str, Path]]) -> None:
    url, _ = ticket(MIB)
    with pytest.raises(BuildError, match=r"imageio at http://127.0.0.1:\d+/images/\S+: refused "
                                         r"by the outbound policy: .*\(a loopback address\)"):
        open_destination(new_context(outbound_allow=()), url, None, True)


def test_cancellation_stops_between_chunks(new_context: NewContext,
                                           ticket: Callable[..., tuple[str, Path]],
                                           raw_target: ImageView) -> None:
    body = raw_target.body_path
    url, _ = ticket(body.stat().st_size)
    ctx = new_context()
    destination = open_destination(ctx, url, None, True)
    record = ctx.progress_sink

    def cancel_early(percent: int, activity: str | None) -> None:
        record(percent, activity)
        if percent >= 1:
            ctx.cancel_event.set()

    ctx.progress_sink = cancel_early
    with pytest.raises(BuildCancelled):
        upload(ctx, body, destination, True)
    assert max(percent for percent, _ in ctx.reports) < 50
