"""The `agent-deploy` command: offline checks of the real program, no Pulumi CLI needed."""
