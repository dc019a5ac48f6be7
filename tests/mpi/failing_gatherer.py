"""A gatherer that fails in the last worker after a few steps: for the MPI failure tests.

``python failing_gatherer.py`` drills with it (a plain script, no ``run_or_abort``: the
excepthook the Communicator installs must end all ranks). The CLI test loads the class with
``--gatherer failing_gatherer:FailingGatherer``.
"""

import os

from dexterity_nb.agent.gather import Gatherer

FAILING_WORKER, FAIL_AFTER_STEPS = 7, 70  # worker 7 of 8 is on rank 1 of 2; 70 steps = in cycle 3


class FailingGatherer(Gatherer):
    steps = 0

    def select_action(self, predicted_parameters):
        if self.worker_id == FAILING_WORKER:
            self.steps += 1
            if self.steps > FAIL_AFTER_STEPS:
                raise RuntimeError(f"induced failure in worker {self.worker_id}")
        return super().select_action(predicted_parameters)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from dexterity_nb import PPOAgent, get_model_builder, make_env

    agent = PPOAgent(get_model_builder("simple", "ffn"), make_env("CartPole-v1"), horizon=32, workers=8, seed=0)
    agent.assign_gatherer(FailingGatherer)
    agent.drill(20, 2, 64)
