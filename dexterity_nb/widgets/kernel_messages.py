"""Let a widget click reach Python while a cell is still running.

Why this exists: a drill blocks its cell (so "Run All" runs cells in order), and while a
cell runs, the kernel does not read any new message: a click on the dashboard's Stop button
waits until the cell ends, which is too late. `process_pending_widget_messages` is called
by the widgets between drill cycles; it reads the messages the kernel has received but not
yet handled, runs the widget (comm) messages at once, and hands every other message (for
example the next cells' execute requests during "Run All") back to the kernel, in order,
to be handled after the running cell, exactly as if they had never been looked at.

Measured in JupyterLab 4.6 + Chromium (tests/browser): works with ipykernel 7.4; the
ipykernel 6 path follows the same plan on that version's single-threaded shell.
jupyter-ui-poll does a similar thing but its ipykernel 7 support is broken (its issue #54).
Everything here is a no-op outside a kernel (plain Python, the CLI, pytest).
"""

from __future__ import annotations

import asyncio
import sys

WIDGET_MESSAGE_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})


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


def process_pending_widget_messages(kernel=None) -> int:
    """Handle the widget messages the kernel has received while the current cell runs.

    Returns how many widget messages were handled (0 outside a kernel). Button handlers run
    inside this call, on the calling (main) thread, so they may touch the agent safely.
    """
    kernel = kernel if kernel is not None else running_kernel()
    if kernel is None:
        return 0
    shell_channel_thread = getattr(kernel, "shell_channel_thread", None)
    if shell_channel_thread is not None and hasattr(shell_channel_thread, "manager"):
        return _process_ipykernel7(kernel, shell_channel_thread)
    if getattr(kernel, "shell_stream", None) is not None and hasattr(kernel, "schedule_dispatch"):
        return _process_ipykernel6(kernel)
    return 0


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
