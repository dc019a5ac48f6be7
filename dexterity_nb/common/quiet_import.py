"""TensorFlow and Keras without TensorFlow's start-up log lines.

Use it wherever the package may be the first to load TensorFlow::

    from dexterity_nb.common.quiet_import import tensorflow as tf
    from dexterity_nb.common.quiet_import import keras

Each name is imported on first use (importing this module loads no TensorFlow), and the result
is the real module, exactly as ``import tensorflow as tf`` gives it.

Why: TensorFlow 2.21's C++ libraries write INFO lines to the process's stderr while they load
("oneDNN custom operations are on", "Could not find cuda drivers", the CPU-instructions note),
even with ``TF_CPP_MIN_LOG_LEVEL=3`` (absl is not initialised yet), and a notebook shows them
as a red block on a learner's first screen. Being C++, they bypass ``sys.stderr``, so the first import points file
descriptor 2 at a temporary file, then restores it and writes back every captured line that is
not one of :data:`KNOWN_START_UP_LINES` (a Python warning, an unexpected C++ error). Inside
ipykernel, fd 2 is the kernel's own pipe, and restoring it keeps later output flowing to the
notebook. Once TensorFlow is loaded, this is a plain import.

XLA (which recurrent agents' updates use) writes a few more INFO lines the first time it
compiles in a process; :func:`first_xla_compilation_quietly` wraps that first call with the same
capture.

Each agent traces its own compiled functions once (a test counts the traces); from the fifth agent
in a process, TensorFlow warns that those functions "triggered tf.function retracing", advice meant
for a function retraced in a loop. :class:`OwnRetracingFilter` drops that warning for the package's
functions only; a learner's own retracing functions still warn. (Sharing traces between agents is
issue 14's.)
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
import tempfile
import threading

__all__ = ["KNOWN_START_UP_LINES", "KNOWN_XLA_LINES", "OwnRetracingFilter", "drop_start_up_lines", "import_quietly",
           "first_xla_compilation_quietly"]

# (severity, C++ source file, start of the message): matched on the message, not the line
# number, which changes between releases.
_ONEDNN = ("I", "port.cc", "oneDNN custom operations are on.")
_NO_CUDA_DRIVER = ("I", "cudart_stub.cc", "Could not find cuda drivers on your machine")
_CPU_FEATURES = ("I", "cpu_feature_guard.cc", "This TensorFlow binary is optimized to use available CPU instructions")
_CPU_FEATURES_SECOND_LINE = "To enable the following instructions:"
# Noise once TensorFlow has said there is no CUDA driver; with a driver it is a real error.
_CUINIT_FAILED = ("E", "cuda_platform.cc", "failed call to cuInit")
_ABSL_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"

#: The lines TensorFlow writes at start-up on a machine without a GPU (besides absl's notice).
KNOWN_START_UP_LINES = (_ONEDNN, _NO_CUDA_DRIVER, _CPU_FEATURES)
#: The lines XLA writes at its first compilation in a process.
KNOWN_XLA_LINES = (("I", "service.cc", "XLA service"), ("I", "service.cc", "  StreamExecutor"),
                   ("I", "device_compiler.h", "Compiled cluster using XLA!"),
                   ("I", "dump_mlir_util.cc", "disabling MLIR crash reproducer"))

# absl's format: "I0000 00:00:1795630445.554896    5738 port.cc:153] message".
_LOG_LINE = re.compile(r"(?P<severity>[IWEF])\d{4} [\d:.]+\s+\d+ (?P<source>[\w.\-]+):\d+\] (?P<message>.*)")

_LAZY_MODULES = ("tensorflow", "keras")
_lock = threading.RLock()


def _is(text: str, known: tuple) -> bool:
    """True if ``text`` is an absl log line with ``known``'s severity, source and message start."""
    match = _LOG_LINE.fullmatch(text)
    return bool(match) and (match["severity"], match["source"]) == known[:2] and match["message"].startswith(known[2])


def drop_start_up_lines(captured: bytes) -> bytes:
    """``captured`` without TensorFlow's known start-up lines; every other line is kept as it came.

    Dropped: absl's "All log messages before absl::InitializeLog()" notice, the lines in
    :data:`KNOWN_START_UP_LINES` (with the second line of the CPU-instructions note), and
    "failed call to cuInit" only when TensorFlow has also said it found no CUDA driver.
    """
    lines = captured.splitlines(keepends=True)
    texts = [line.decode("utf-8", "replace").rstrip("\r\n") for line in lines]
    no_driver = any(_is(text, _NO_CUDA_DRIVER) for text in texts)
    kept = []
    for index, (line, text) in enumerate(zip(lines, texts)):
        start_up = (
            text == _ABSL_NOTICE
            or any(_is(text, known) for known in KNOWN_START_UP_LINES + KNOWN_XLA_LINES)
            or (no_driver and _is(text, _CUINIT_FAILED))
            or (text.startswith(_CPU_FEATURES_SECOND_LINE) and index > 0 and _is(texts[index - 1], _CPU_FEATURES))
        )
        if not start_up:
            kept.append(line)
    return b"".join(kept)


class OwnRetracingFilter(logging.Filter):
    """Drops TensorFlow's "triggered tf.function retracing" warning about the package's per-agent functions.

    Agents of one architecture share their update (``agent/update.py``), but an agent built from an
    unnamed builder, its gathering step and a curiosity bonus's networks trace functions of their own.
    """

    # How TensorFlow names them: "<function NumpyForward.refresh.<locals>.<lambda> at 0x...>".
    OWN = ("<function NumpyForward.refresh.", "<function NumpyRecurrentStep.refresh.", "<function _compile.",
           "<function _policy_forward.", "<function _feed_forward_policy_forward.",
           "<function RandomNetworkDistillation.setup.", "<function IntrinsicCritic.__init__.", "<function _compiled_step.")

    def filter(self, record) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and any(name in message for name in self.OWN))


def _write_to_stderr_fd(data: bytes):
    while data:
        data = data[os.write(2, data):]


def import_quietly(name: str):
    """``importlib.import_module(name)``; the first import of TensorFlow drops its start-up lines.

    ``name`` is "tensorflow", "keras" or a submodule of either. The physical devices are listed
    during the quiet import too, since that is when TensorFlow reports a missing CUDA driver
    (it costs ~1 ms and leaves device settings free to change, as TensorFlow's GPU guide does).
    """
    with _lock:
        if "tensorflow" in sys.modules:  # imported before the package (by the learner, or earlier here)
            _filter_own_retracing(sys.modules["tensorflow"])
            return importlib.import_module(name)
        try:
            saved_stderr = os.dup(2)
        except OSError:  # no fd 2 (e.g. pythonw): nothing to keep quiet
            _filter_own_retracing(importlib.import_module("tensorflow"))
            return importlib.import_module(name)
        with _known_lines_dropped(saved_stderr):
            tensorflow = importlib.import_module("tensorflow")
            tensorflow.config.list_physical_devices()
            _filter_own_retracing(tensorflow)
            return importlib.import_module(name)


def _filter_own_retracing(tensorflow):
    get_logger = getattr(tensorflow, "get_logger", None)  # absent from a stand-in module (tests)
    if get_logger is None:
        return
    logger = get_logger()
    if not any(isinstance(existing, OwnRetracingFilter) for existing in logger.filters):
        logger.addFilter(OwnRetracingFilter())


_xla_compiled = False


@contextlib.contextmanager
def first_xla_compilation_quietly():
    """Around a call that may be the process's first XLA compilation: drop XLA's INFO lines then.

    Every other line written meanwhile is written back when the call ends. After the first use
    that returns, this does nothing.
    """
    global _xla_compiled
    if _xla_compiled:
        yield
        return
    with _lock:
        try:
            saved_stderr = os.dup(2)
        except OSError:  # no fd 2: nothing to keep quiet
            saved_stderr = None
        if saved_stderr is None:
            yield
        else:
            with _known_lines_dropped(saved_stderr):
                yield
        _xla_compiled = True


class _known_lines_dropped:
    """Point fd 2 at a temporary file; on exit restore ``saved_stderr`` and write back the unknown lines."""

    def __init__(self, saved_stderr):
        self.saved_stderr = saved_stderr

    def __enter__(self):
        self.captured = tempfile.TemporaryFile()
        _flush_python_stderr()
        os.dup2(self.captured.fileno(), 2)

    def __exit__(self, *exception):
        _flush_python_stderr()
        os.dup2(self.saved_stderr, 2)
        os.close(self.saved_stderr)
        self.captured.seek(0)
        _write_to_stderr_fd(drop_start_up_lines(self.captured.read()))
        self.captured.close()
        return False


def _flush_python_stderr():
    # In a plain process sys.stderr buffers over fd 2: flush so its lines land on the right side
    # of the swap. In ipykernel sys.stderr is the kernel's stream and does not touch fd 2.
    for stream in (sys.stderr, sys.__stderr__):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):  # None, closed, or not a real stream
            pass


def __getattr__(name):
    if name in _LAZY_MODULES:
        module = import_quietly(name)
        globals()[name] = module  # later imports of the name are a plain attribute lookup
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
