# agent-deploy: `make up` runs the local stack, `make test` runs every test.
# Cloud stacks: `make preview STACK=staging`, `make up STACK=staging` (see README).
SHELL := /bin/bash
# A failed step of a pipe (curl | sh) fails the recipe, and make stops there.
.SHELLFLAGS := -o pipefail -ec
.DEFAULT_GOAL := help

STACK ?= local
# The CLI release matching the pulumi SDK in uv.lock, derived where the workflows derive it.
PULUMI_VERSION ?= $(shell $(CURDIR)/scripts/pulumi-version.sh)
PULUMI_HOME ?= $(HOME)/.pulumi
PULUMI := $(or $(shell command -v pulumi 2>/dev/null),$(PULUMI_HOME)/bin/pulumi)
UV_RUN := uv run --frozen
# Where `check-all` finds the stack files (a test points it at a scratch project).
STACKS_DIR ?= $(CURDIR)

export UV_PYTHON_DOWNLOADS := never
# State lives in a file backend inside the repo unless you point elsewhere (s3://…, Pulumi
# Cloud): set per command, so your global `pulumi login` is left alone.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state

ifeq ($(STACK),local)
# The local stack's secrets are generated passwords for throw-away containers: an empty
# passphrase is enough there, and only there. Cloud stacks use their own secrets provider.
export PULUMI_CONFIG_PASSPHRASE ?=
UP_FLAGS ?= --yes
endif
UP_FLAGS ?=

.PHONY: help uv deps pulumi-cli state stack up preview rollback destroy check check-all test lint \
	lint-workflows fmt e2e-local

help:  ## list the verbs
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

uv:
	@command -v uv >/dev/null && exit 0; \
	if ! out=$$(python3 -m pip install --quiet uv 2>&1); then \
		echo "$$out" >&2; \
		case "$$out" in \
		*externally-managed-environment*) echo "make: this Python refuses pip installs (PEP 668). Install uv with 'pipx install uv' or 'curl -LsSf https://astral.sh/uv/install.sh | sh', then run make again." >&2;; \
		*) echo "make: could not install uv with pip (see above). Install it (https://docs.astral.sh/uv/getting-started/installation/), then run make again." >&2;; \
		esac; \
		exit 1; \
	fi

deps: uv  ## install the program's and the app's dependencies from the lock files
	uv sync --frozen
	uv sync --frozen --project app

# Offline (no route to get.pulumi.com), curl's own error says nothing about what to do: one
# line says what to install and how instead. An installer that fails later shows its output.
pulumi-cli:  ## install the pinned Pulumi CLI with Pulumi's official installer, if absent
	@if ! command -v pulumi >/dev/null && [ ! -x "$(PULUMI_HOME)/bin/pulumi" ]; then \
		echo "Installing Pulumi CLI $(PULUMI_VERSION) with Pulumi's installer"; \
		installer=$$(curl -fsSL https://get.pulumi.com 2>/dev/null) \
			|| { echo "make: cannot download Pulumi's installer from https://get.pulumi.com (no network?). Install the Pulumi CLI $(PULUMI_VERSION) yourself (https://www.pulumi.com/docs/iac/download-install/, or the pulumi-v$(PULUMI_VERSION)-linux-x64.tar.gz release unpacked into $(PULUMI_HOME)/bin), then run make again." >&2; exit 1; }; \
		sh -c "$$installer" sh --version $(PULUMI_VERSION) \
			&& [ -x "$(PULUMI_HOME)/bin/pulumi" ] \
			|| { echo "make: installing the Pulumi CLI $(PULUMI_VERSION) failed (see above). Install it (https://www.pulumi.com/docs/iac/download-install/), then run make again." >&2; exit 1; }; \
	fi

state:
	@case "$(PULUMI_BACKEND_URL)" in file://*) mkdir -p "$(PULUMI_BACKEND_URL:file://%=%)";; esac

stack: pulumi-cli state  ## select the stack, creating it on first use
	$(PULUMI) stack select --create $(STACK)

up: deps stack  ## deploy STACK (default: local, which needs Docker and no cloud account)
	$(PULUMI) up --stack $(STACK) $(UP_FLAGS)

preview: deps stack  ## show what `up` would change on STACK
	$(PULUMI) preview --stack $(STACK) --diff

rollback: pulumi-cli state  ## redeploy STACK's previous image (or TO=<digest>), building nothing
	@ref="$$(PULUMI='$(PULUMI)' scripts/rollback-image.sh '$(STACK)' '$(TO)')"; \
	echo "Rolling $(STACK) back to $$ref"; \
	$(PULUMI) config set --path app.image "$$ref" --stack $(STACK); \
	$(PULUMI) up --stack $(STACK) $(UP_FLAGS); \
	echo "app.image is pinned in Pulumi.$(STACK).yaml: 'pulumi config rm --path app.image --stack $(STACK)' builds again"

destroy: pulumi-cli state  ## tear STACK down (asks for confirmation)
	$(PULUMI) destroy --stack $(STACK)

check: uv  ## validate STACK offline and list what it would manage (no CLI, no cloud)
	$(UV_RUN) agent-deploy check --stack $(STACK)

# The local stack for real: the Docker engine runs exactly what the program registers for
# Pulumi.local.yaml, against offline stand-ins of the images it pulls (tests/e2e/local.py).
e2e-local: uv  ## run the local stack on Docker for real, prove the app through it, remove it
	bash tests/app/support/start-dockerd.sh
	bash tests/app/support/build-standins.sh
	images=$$($(UV_RUN) python -m tests.e2e.local images) && \
		bash tests/e2e/build-backing-standins.sh $$images
	$(UV_RUN) python -m tests.e2e.local run

check-all: uv  ## `check` every Pulumi.<stack>.yaml in the repo, all of them even if one fails
	@failed=""; for file in $(STACKS_DIR)/Pulumi.*.yaml; do \
		stack=$${file##*/Pulumi.}; stack=$${stack%.yaml}; echo "== $$stack"; \
		$(UV_RUN) agent-deploy check --stack "$$stack" --project-dir "$(STACKS_DIR)" >/dev/null \
			|| failed="$$failed $$stack"; \
	done; \
	if [ -n "$$failed" ]; then echo "invalid stacks:$$failed" >&2; exit 1; fi; \
	echo "all stacks valid"

.PHONY: cost cost-readme
cost: uv  ## what STACK costs a month, offline, from the dated price table in prices/
	$(UV_RUN) agent-deploy cost --stack $(STACK)

cost-readme: uv  ## rewrite README.md's table of every shipped stack's monthly estimate
	$(UV_RUN) agent-deploy cost --all --write-readme README.md

test: deps  ## every test: program under mocks, CLI, workflows, app (Postgres/Redis/Docker)
	$(UV_RUN) pytest
	$(UV_RUN) --project app pytest -c app/pyproject.toml tests/app

lint: uv  ## ruff, formatting and mypy (strict on infra/)
	$(UV_RUN) ruff check .
	$(UV_RUN) ruff format --check .
	$(UV_RUN) mypy

lint-workflows: uv  ## actionlint and zizmor on .github/workflows
	$(UV_RUN) actionlint .github/workflows/*.yml
	$(UV_RUN) zizmor --offline .github

fmt: uv
	$(UV_RUN) ruff format .
	$(UV_RUN) ruff check --fix .
