"""The dashboard in a real kernel, driven through jupyter_client as a notebook front end would.

Two paths, each in a real kernel process:
* clicks reach the running cell: the dashboard shows a Stop button; a click sent while the drill
  runs stops it at a cycle boundary, and a cell sent meanwhile still runs afterwards, in order;
* they do not (an ipykernel older than those tested): no Stop button but the interrupt hint, and
  the kernel's interrupt ends the drill cleanly, as the hint says.

By default the kernel runs this environment's Python (its ipykernel). To test other ipykernel
versions, list interpreters in DEXTERITY_KERNEL_PYTHONS (separated by os.pathsep), each with that
ipykernel, ipython and ipywidgets installed and dexterity_nb importable, e.g. a venv made with
`python -m venv old && old/bin/pip install ipykernel==6.17.1 "ipython<9" "ipywidgets==8.1.*"`
plus a .pth file in its site-packages naming this environment's site-packages and the repository.
"""

import json
import os
import sys
import time

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import KernelManager  # noqa: E402

PYTHONS = [sys.executable] + [path for path in os.environ.get("DEXTERITY_KERNEL_PYTHONS", "").split(os.pathsep)
                              if path]

SET_UP = """
import ipykernel
from dexterity_nb.agent.callbacks import Callback
from dexterity_nb.agent.ppo_agent import PPOAgent
from dexterity_nb.common.wrappers import make_env
from dexterity_nb.models import get_model_builder
from dexterity_nb.widgets import kernel_messages
from dexterity_nb.widgets.dashboard import LiveDashboard

class Slow(Callback):
    # gives the test time to act while the drill runs
    def on_cycle_end(self, agent, stats):
        import time
        time.sleep(0.2)

agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1", seed=0), seed=0,
                 horizon=16, workers=1, verbose=False)
if {pretend_untested}:
    kernel_messages.CLICKS_TESTED_FROM.update({{"ipykernel 6": (99, 0), "ipykernel 7": (99, 0)}})
print("ipykernel", ipykernel.__version__, "clicks", kernel_messages.clicks_reach_running_cells())
"""

DRILL = """
agent.drill(500, 1, 16, callbacks=[Slow(), LiveDashboard()])
print("OUTCOME", agent.drill_outcome, agent.cycle, len(agent.history))
"""


@pytest.fixture(params=PYTHONS, ids=lambda python: os.path.basename(os.path.dirname(os.path.dirname(python))))
def kernel(request, tmp_path):
    spec = tmp_path / "kernels" / "under-test"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [request.param, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "under test", "language": "python"}))
    manager = KernelManager(kernel_name="under-test",
                            kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")]))
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=120)
        yield request.param, manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


class Frontend:
    """Reads the kernel's iopub messages: widgets opened, printed text, cells finished."""

    def __init__(self, client):
        self.client, self.widgets, self.text, self.idle_parents = client, {}, "", set()

    def read(self, until, timeout=120.0):
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out; printed so far:\n{self.text}"
            try:
                message = self.client.get_iopub_msg(timeout=min(remaining, 1.0))
            except Exception:  # queue.Empty
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "comm_open" and content.get("target_name") == "jupyter.widget":
                self.widgets[content["comm_id"]] = content["data"]["state"]
            elif kind == "comm_msg" and content["comm_id"] in self.widgets:
                self.widgets[content["comm_id"]].update(content["data"].get("state", {}))
            elif kind == "stream":
                self.text += content["text"]
            elif kind == "error":
                self.text += "\n".join(content["traceback"])
            elif kind == "status" and content["execution_state"] == "idle":
                self.idle_parents.add(message["parent_header"].get("msg_id"))

    def run(self, code, timeout=180.0):
        msg_id = self.client.execute(code)
        self.read(lambda: msg_id in self.idle_parents, timeout)
        return msg_id

    def of_model(self, model_name):
        return {comm_id: state for comm_id, state in self.widgets.items() if state.get("_model_name") == model_name}


def interrupt_until_idle(manager, frontend, msg_id, attempts=5):
    """Press the kernel's interrupt until the cell ends, as a user would press ■ again.

    A SIGINT that lands while Python runs a garbage-collection callback (matplotlib's transform
    weakrefs, during a redraw) is printed as "Exception ignored ... KeyboardInterrupt" and lost:
    Python allows nothing else there. The next interrupt then reaches the drill.
    """
    for _ in range(attempts):
        manager.interrupt_kernel()
        try:
            frontend.read(lambda: msg_id in frontend.idle_parents, timeout=15.0)
            return
        except AssertionError:  # still running: that interrupt was swallowed
            continue
    raise AssertionError(f"the cell did not end after {attempts} interrupts; printed so far:\n{frontend.text}")


def running_cycles(frontend):
    """Cycles done so far, as the dashboard's progress bar shows them."""
    bars = frontend.of_model("IntProgressModel")
    return max((state.get("value", 0) for state in bars.values()), default=0)


def test_a_stop_click_reaches_a_running_drill(kernel):
    python, manager, client = kernel
    frontend = Frontend(client)
    frontend.run(SET_UP.format(pretend_untested=False))
    if python != sys.executable and "clicks False" in frontend.text:
        pytest.skip(f"{frontend.text.split(' clicks')[0]}: older than those tested, so no Stop button")
    assert "clicks True" in frontend.text, frontend.text
    drill = client.execute(DRILL)
    frontend.read(lambda: running_cycles(frontend) >= 3)
    [(button, state)] = frontend.of_model("ButtonModel").items()
    assert state["description"] == "Stop"
    client.shell_channel.send(client.session.msg("comm_msg", {
        "comm_id": button, "data": {"method": "custom", "content": {"event": "click"}}}))
    next_cell = client.execute("print('NEXT CELL')")  # sent while the drill runs
    frontend.read(lambda: {drill, next_cell} <= frontend.idle_parents)
    outcome = frontend.text.split("OUTCOME ")[1].split()
    assert outcome[0] == "stopped", frontend.text
    assert 3 <= int(outcome[1]) < 500 and outcome[1] == outcome[2]
    assert frontend.text.index("OUTCOME") < frontend.text.index("NEXT CELL")


def test_without_clicks_the_hint_replaces_the_button_and_an_interrupt_stops_cleanly(kernel):
    python, manager, client = kernel
    frontend = Frontend(client)
    frontend.run(SET_UP.format(pretend_untested=True))
    assert "clicks False" in frontend.text, frontend.text
    drill = client.execute(DRILL)
    frontend.read(lambda: running_cycles(frontend) >= 3)
    assert frontend.of_model("ButtonModel") == {}
    hints = [state["value"] for state in frontend.of_model("HTMLModel").values()
             if "interrupt the kernel" in state.get("value", "")]
    assert len(hints) == 1
    interrupt_until_idle(manager, frontend, drill)
    outcome = frontend.text.split("OUTCOME ")[1].split()
    assert outcome[0] == "interrupted", frontend.text
    assert 3 <= int(outcome[1]) < 500 and outcome[1] == outcome[2], "every finished cycle is kept"
    assert "the unfinished cycle was undone" in frontend.text
