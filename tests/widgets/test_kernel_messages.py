"""kernel_messages without a browser: a no-op outside a kernel, and the message routing itself.

The routing tests put real Jupyter messages (signed by a real `jupyter_client.Session`) on a
real ZMQ socket and hand them to a stand-in kernel that records what it was asked to do: widget
(comm) messages must run at once, in order, and every other message must go back to the
kernel, in order, untouched. tests/browser proves the same with a real kernel and a click.
"""

import asyncio
import itertools
import subprocess
import sys
from types import SimpleNamespace

import pytest
import zmq
from jupyter_client.session import Session

from dexterity_nb.widgets import kernel_messages
from dexterity_nb.widgets.kernel_messages import (in_notebook, process_pending_widget_messages,
                                                  running_kernel)

# comm messages (a click is a comm_msg) interleaved with the next cells' requests
SENT = ["comm_msg", "execute_request", "comm_open", "comm_msg", "kernel_info_request",
        "comm_close"]
WIDGET_MESSAGES = [kind for kind in SENT if kind in kernel_messages.WIDGET_MESSAGE_TYPES]
OTHER_MESSAGES = [kind for kind in SENT if kind not in kernel_messages.WIDGET_MESSAGE_TYPES]

_addresses = itertools.count()


def test_outside_a_kernel_everything_is_a_quiet_no_op():
    assert running_kernel() is None
    assert in_notebook() is False
    assert process_pending_widget_messages() == 0


def test_plain_python_does_not_import_ipykernel():
    code = ("import sys\nfrom dexterity_nb.widgets.kernel_messages import "
            "process_pending_widget_messages as process\nassert process() == 0\n"
            "print('ipykernel' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_an_unknown_kind_of_kernel_is_left_alone():
    assert process_pending_widget_messages(SimpleNamespace()) == 0


@pytest.fixture
def socket_pair():
    """(sender, receiver): the receiver plays the socket the kernel's main thread reads."""
    context = zmq.Context.instance()
    address = f"inproc://dexterity-test-{next(_addresses)}"
    receiver = context.socket(zmq.PAIR)
    receiver.bind(address)
    sender = context.socket(zmq.PAIR)
    sender.connect(address)
    yield sender, receiver
    sender.close(linger=0)
    receiver.close(linger=0)


def send_all(session, sender, kinds):
    for index, kind in enumerate(kinds):
        session.send(sender, kind, content={"index": index})


def message_type(session, raw_message):
    _, frames = session.feed_identities(raw_message, copy=False)
    return session.deserialize(frames, content=False, copy=False)["header"]["msg_type"]


def test_drain_reads_every_waiting_message_in_order_and_stops_when_empty(socket_pair):
    sender, receiver = socket_pair
    session = Session(key=b"secret")
    send_all(session, sender, SENT)
    drained = kernel_messages._drain(receiver)
    assert [message_type(session, raw) for raw in drained] == SENT
    assert kernel_messages._drain(receiver) == []


class Kernel7:
    """What `_process_ipykernel7` uses of an ipykernel 7 kernel, recording the calls."""

    def __init__(self, socket):
        self.session = Session(key=b"secret")
        pair = SimpleNamespace(to_socket=socket)
        manager = SimpleNamespace(get_shell_channel_to_subshell_pair=lambda subshell_id: pair)
        self.shell_channel_thread = SimpleNamespace(manager=manager)
        self._shell_parent_ident = "cell identity"
        self.parent = ("cell identity", {"header": {"msg_type": "execute_request"}})
        self.dispatched, self.handed_back = [], []

    def get_parent(self, channel):
        return self.parent[1]

    def _get_shell_context_var(self, variable):
        return self.parent[0]

    def set_parent(self, ident, parent, channel="shell"):
        self.parent = (ident, parent)

    async def dispatch_shell(self, raw_message, subshell_id=None, concurrent=False):
        # a comm handler sets the message as parent while it runs, as the real kernel does
        self.parent = ("widget identity", {"header": {"msg_type": "comm_msg"}})
        self.dispatched.append(message_type(self.session, raw_message))

    async def shell_main(self, subshell_id, raw_message):
        self.handed_back.append(message_type(self.session, raw_message))


def test_ipykernel7_runs_widget_messages_now_and_hands_the_rest_back_in_order(socket_pair):
    sender, receiver = socket_pair
    kernel = Kernel7(receiver)
    send_all(kernel.session, sender, SENT)

    async def between_two_cycles():
        handled = process_pending_widget_messages(kernel)
        assert kernel.dispatched == WIDGET_MESSAGES and kernel.handed_back == []
        # the cell's output still belongs to the cell after the click's handler ran
        assert kernel.parent == ("cell identity", {"header": {"msg_type": "execute_request"}})
        for _ in range(5):  # the handed-back messages run once the event loop gets control
            await asyncio.sleep(0)
        return handled

    assert asyncio.run(between_two_cycles()) == len(WIDGET_MESSAGES)
    assert kernel.handed_back == OTHER_MESSAGES
    assert kernel_messages._drain(receiver) == []


class Kernel6:
    """What `_process_ipykernel6` uses of an ipykernel 6 kernel, recording the calls."""

    def __init__(self, socket):
        self.session = Session(key=b"secret")
        self.shell_stream = SimpleNamespace(socket=socket)
        self._parent_ident = {"shell": "cell identity"}
        self.parent = ("cell identity", {"header": {"msg_type": "execute_request"}})
        self.handled, self.scheduled = [], []
        self.shell_handlers = {kind: self._handle for kind in kernel_messages.WIDGET_MESSAGE_TYPES}

    def _handle(self, stream, idents, message):
        assert self.parent[1] is message, "a handler runs with its message as the parent"
        self.handled.append(message["header"]["msg_type"])

    def get_parent(self, channel):
        return self.parent[1]

    def set_parent(self, ident, parent, channel="shell"):
        self.parent = (ident, parent)

    def dispatch_shell(self, raw_message):  # pragma: no cover - only scheduled, never run here
        raise AssertionError("the running cell must not dispatch other messages itself")

    def schedule_dispatch(self, dispatch, raw_message):
        assert dispatch == self.dispatch_shell
        self.scheduled.append(message_type(self.session, raw_message))


def test_ipykernel6_runs_widget_messages_now_and_queues_the_rest_in_order(socket_pair):
    sender, receiver = socket_pair
    kernel = Kernel6(receiver)
    send_all(kernel.session, sender, SENT)
    assert process_pending_widget_messages(kernel) == len(WIDGET_MESSAGES)
    assert kernel.handled == WIDGET_MESSAGES and kernel.scheduled == OTHER_MESSAGES
    assert kernel.parent == ("cell identity", {"header": {"msg_type": "execute_request"}})


# -- which kernels get a Stop button ---------------------------------------------------------------

def kernel6_structure():
    return SimpleNamespace(shell_stream=SimpleNamespace(socket=None), schedule_dispatch=print)


def kernel7_structure():
    return SimpleNamespace(shell_channel_thread=SimpleNamespace(manager=object()))


@pytest.mark.parametrize("make_kernel, version, expected", [
    (kernel6_structure, (6, 16), False),   # older than the oldest ipykernel 6 tested (6.17)
    (kernel6_structure, (6, 17), True),    # long pinned by Google Colab
    (kernel6_structure, (6, 29), True),
    (kernel7_structure, (7, 3), False),    # 7.0 to 7.3 cannot dispatch a comm message concurrently
    (kernel7_structure, (7, 4), True),
    (SimpleNamespace, (7, 4), False),      # a kernel without a structure we know (e.g. ipykernel 5)
])
def test_clicks_reach_running_cells_needs_a_known_structure_at_a_tested_version(
        make_kernel, version, expected):
    assert kernel_messages.clicks_reach_running_cells(make_kernel(), version=version) is expected


def test_outside_a_kernel_clicks_never_reach_a_running_cell():
    assert kernel_messages.clicks_reach_running_cells() is False


def test_the_installed_ipykernel_version_is_read_as_major_minor(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", SimpleNamespace(__version__="6.17.1"))
    kernel_messages.ipykernel_version.cache_clear()
    try:
        assert kernel_messages.ipykernel_version() == (6, 17)
    finally:
        kernel_messages.ipykernel_version.cache_clear()


def test_an_untested_ipykernel_is_left_alone_and_its_messages_stay_queued(socket_pair, monkeypatch):
    sender, receiver = socket_pair
    kernel = Kernel6(receiver)
    send_all(kernel.session, sender, SENT)
    monkeypatch.setattr(kernel_messages, "ipykernel_version", lambda: (6, 5))
    assert process_pending_widget_messages(kernel) == 0
    assert kernel.handled == [] and kernel.scheduled == []
    # untouched: the kernel itself reads them after the cell, as it would without us
    assert [message_type(kernel.session, raw) for raw in kernel_messages._drain(receiver)] == SENT
