"""Let a widget click reach Python while a cell is still running.

Why this exists: a drill blocks its cell (so "Run All" runs cells in order), and while a
cell runs, the kernel does not read any new message: a click on the dashboard's Stop button
waits until the cell ends, which is too late. `process_pending_widget_messages` is called
by the widgets between drill cycles; it reads the messages the kernel has received but not
yet handled, runs the widget (comm) messages at once, and hands every other message (for
example the next cells' execute requests during "Run All") back to the kernel, in order,
to be handled after the running cell, exactly as if they had never been looked at.

It reads the kernel's private structures, which differ between ipykernel 6 and 7, so it acts
only on a kernel it was tested on (`clicks_reach_running_cells`): a structure it knows, at an
ipykernel version no older than the oldest one tested with that structure. Tested with a Stop
click sent to a running drill (tests/widgets/test_real_kernel.py, through jupyter_client) on
ipykernel 6.17.1 (long pinned by Google Colab), 6.29.5 and 7.4, and in JupyterLab 4.6 + Chromium
(tests/browser) on 6.31 and 7.4. ipykernel 7.0 to 7.3 have the 7 structure but no concurrent
comm dispatch (`dispatch_shell(..., concurrent=True)` arrived in 7.4; on 7.0.1 a click made
the drill fail with an AttributeError), so they are left alone.
Elsewhere (older kernels, 7.0 to 7.3, unknown kernels) it does nothing, and the dashboards show
no Stop button: the kernel's own interrupt stops a drill cleanly instead.
jupyter-ui-poll does a similar thing but its ipykernel 7 support is broken (its issue #54).
Everything here is a no-op outside a kernel (plain Python, the CLI, pytest).
"""

from __future__ import annotations

import asyncio
import functools
import re
import sys

WIDGET_MESSAGE_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})

# The oldest ipykernel, per kernel structure, on which a click was seen to reach a running cell.
CLICKS_TESTED_FROM = {"ipykernel 6": (6, 17), "ipykernel 7": (7, 4)}

# What the dashboards show instead of a Stop button when clicks cannot reach a running cell.
INTERRUPT_HINT = ("To stop early, interrupt the kernel (the ■ button): the drill ends at once, the unfinished "
                  "cycle is undone and every finished cycle is kept.")


def running_kernel():
    """The IPython kernel running this code, or None in plain Python.

    Only looks at ipykernel if it is already imported, so plain Python never imports it.
    """
    if "ipykernel" not in sys.modules:
        return None
    try:
        from ipykernel.kernelbase import Kernel
    except ImportError:  # pragma: no cover - half-installed ipykernel
        return None
    if not Kernel.initialized():
        return None
    kernel = Kernel.instance()
    if getattr(kernel, "session", None) is None:
        return None
    return kernel


def in_notebook() -> bool:
    """True when widgets can be displayed (code runs in a Jupyter kernel)."""
    return running_kernel() is not None


def kernel_structure(kernel) -> str | None:
    """Which of the known ways of reading messages this kernel has: "ipykernel 7" (a shell-channel
    thread with a subshell manager), "ipykernel 6" (the main thread reads the shell socket and
    queues messages), or None (anything else, e.g. ipykernel 5)."""
    shell_channel_thread = getattr(kernel, "shell_channel_thread", None)
    if shell_channel_thread is not None and hasattr(shell_channel_thread, "manager"):
        return "ipykernel 7"
    if getattr(kernel, "shell_stream", None) is not None and hasattr(kernel, "schedule_dispatch"):
        return "ipykernel 6"
    return None


@functools.cache
def ipykernel_version() -> tuple[int, int]:
    """(major, minor) of the installed ipykernel; (0, 0) when it cannot be read."""
    try:
        import ipykernel
    except ImportError:
        return (0, 0)
    match = re.match(r"(\d+)\.(\d+)", getattr(ipykernel, "__version__", ""))
    return (int(match[1]), int(match[2])) if match else (0, 0)


def clicks_reach_running_cells(kernel=None, version=None) -> bool:
    """True when `process_pending_widget_messages` delivers clicks to a running cell in this kernel.

    That needs a kernel structure it knows (`kernel_structure`) and an ipykernel at least as new
    as the oldest one it was tested on with that structure (`CLICKS_TESTED_FROM`). ``version``
    defaults to the installed ipykernel's (major, minor). False outside a kernel.
    """
    kernel = kernel if kernel is not None else running_kernel()
    if kernel is None:
        return False
    structure = kernel_structure(kernel)
    if structure is None:
        return False
    return (version or ipykernel_version()) >= CLICKS_TESTED_FROM[structure]


def process_pending_widget_messages(kernel=None) -> int:
    """Handle the widget messages the kernel has received while the current cell runs.

    Returns how many widget messages were handled (0 outside a kernel, and in a kernel where
    `clicks_reach_running_cells` is False). Button handlers run inside this call, on the calling
    (main) thread, so they may touch the agent safely.
    """
    kernel = kernel if kernel is not None else running_kernel()
    if kernel is None or not clicks_reach_running_cells(kernel):
        return 0
    if kernel_structure(kernel) == "ipykernel 7":
        return _process_ipykernel7(kernel, kernel.shell_channel_thread)
    return _process_ipykernel6(kernel)


def _drain(socket):
    """Every message waiting on a ZMQ socket, oldest first.

    Reading until the socket is empty matters: the kernel's ZMQStream is edge-triggered, and a
    message left behind after a partial read might never wake it up again.
    """
    import zmq

    messages = []
    while True:
        try:
            messages.append(socket.recv_multipart(zmq.NOBLOCK, copy=False))
        except zmq.Again:
            return messages


def _message_type(kernel, raw_message) -> str:
    _, frames = kernel.session.feed_identities(raw_message, copy=False)
    return kernel.session.deserialize(frames, content=False, copy=False)["header"]["msg_type"]


def _process_ipykernel7(kernel, shell_channel_thread) -> int:
    """ipykernel 7: a shell-channel thread forwards messages to the main thread over an
    inproc socket; we read that socket and do for widget messages what the kernel itself does
    for them during an awaiting (async) cell: dispatch them concurrently with the cell."""
    pair = shell_channel_thread.manager.get_shell_channel_to_subshell_pair(None)
    handled = 0
    for raw_message in _drain(pair.to_socket):
        if _message_type(kernel, raw_message) in WIDGET_MESSAGE_TYPES:
            _dispatch_widget_message_ipykernel7(kernel, raw_message)
            handled += 1
        else:
            _hand_back_ipykernel7(kernel, raw_message)
    return handled


def _dispatch_widget_message_ipykernel7(kernel, raw_message):
    # The kernel's own concurrent comm dispatch (kernelbase.shell_main) with the cell's parent
    # restored afterwards, so the cell's later output still goes to the cell.
    shell_parent = kernel.get_parent("shell")
    shell_ident = kernel._get_shell_context_var(kernel._shell_parent_ident)
    coroutine = kernel.dispatch_shell(raw_message, subshell_id=None, concurrent=True)
    try:
        # Comm handlers are synchronous, so this coroutine finishes in one step.
        coroutine.send(None)
    except StopIteration:
        pass
    else:  # pragma: no cover - a future ipykernel awaiting inside comm dispatch
        coroutine.close()
        kernel.log.warning("dexterity_nb: a widget message needed the event loop; skipped")
    finally:
        kernel.set_parent(shell_ident, shell_parent, channel="shell")


def _hand_back_ipykernel7(kernel, raw_message):
    # Each handed-back message waits for the main shell's asyncio lock, which the running cell
    # holds; asyncio locks are first-come first-served, so the original order is kept.
    try:
        asyncio.get_running_loop()
        asyncio.ensure_future(kernel.shell_main(None, raw_message))
    except RuntimeError:  # pragma: no cover - no running loop in this thread
        kernel.io_loop.add_callback(kernel.shell_main, None, raw_message)


def _process_ipykernel6(kernel) -> int:
    """ipykernel 6: the main thread reads the shell socket itself and queues messages."""
    handled = 0
    for raw_message in _drain(kernel.shell_stream.socket):
        if _message_type(kernel, raw_message) in WIDGET_MESSAGE_TYPES:
            _dispatch_widget_message_ipykernel6(kernel, raw_message)
            handled += 1
        else:
            kernel.schedule_dispatch(kernel.dispatch_shell, raw_message)
    return handled


def _dispatch_widget_message_ipykernel6(kernel, raw_message):
    shell_parent = kernel.get_parent("shell")
    shell_ident = kernel._parent_ident["shell"]
    idents, frames = kernel.session.feed_identities(raw_message, copy=False)
    message = kernel.session.deserialize(frames, content=True, copy=False)
    handler = kernel.shell_handlers.get(message["header"]["msg_type"])
    try:
        kernel.set_parent(idents, message, channel="shell")
        if handler is not None:
            handler(kernel.shell_stream, idents, message)
    except Exception:
        kernel.log.error("dexterity_nb: error in a widget message handler", exc_info=True)
    finally:
        kernel.set_parent(shell_ident, shell_parent, channel="shell")
