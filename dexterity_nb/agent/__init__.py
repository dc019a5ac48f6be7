"""The agent: PPO updates (ppo_agent), gathering (gather), callbacks, the maths (objectives)."""
