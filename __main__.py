"""agent-deploy: validate the whole stack config, then run the chosen target's composition."""

import importlib

import pulumi

import stacks

config = stacks.load_config()
# Only the chosen target's module (and so its provider SDK) is imported.
composition = importlib.import_module(f"stacks.{config.target}")
for name, value in composition.build(config).items():
    pulumi.export(name, value)
