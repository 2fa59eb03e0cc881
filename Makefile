# The two commands a user needs: `make demo` and `make test` (`make evaluate` measures ranking
# quality, `make bench` speed). They install what they need
# first (virtualenv, pinned Python packages, Kafka and Flink connector jars), idempotently,
# into the ignored folders .venv/ and .cache/.

PYTHON ?= python3.11
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-16)

# The benchmark's baselines (plain Python, Quix Streams) need older confluent-kafka and pydantic
# than the project, so they get a virtualenv of their own.
BASELINES_VENV := .venv-baselines
BASELINES_REQUIREMENTS := benchmarks/baselines/requirements.txt
BASELINES_STAMP := $(BASELINES_VENV)/.installed-$(shell cat $(BASELINES_REQUIREMENTS) | sha256sum | cut -c1-16)

.PHONY: demo test test-unit bench bench-serving evaluate setup baselines jars broker-stop clean

demo: setup
	$(VENV)/bin/dreamumm demo

test: setup baselines
	mvn -B -q -Dstyle.color=never -f jvm/pom.xml -Dmaven.repo.local=.cache/m2 test
	$(VENV_PYTHON) -m pytest -q

test-unit: setup
	$(VENV_PYTHON) -m pytest -q -m "not integration"

# Replays SYNTHETIC events through the job and its baselines and writes docs/benchmarks.md;
# pass options with ARGS, e.g. make bench ARGS="--dims 128 --events 200000".
bench: setup baselines
	$(VENV_PYTHON) -m benchmarks.run $(ARGS)

# Only the serving benchmark (store, ranker, HTTP service); replaces its section of docs/benchmarks.md.
bench-serving: setup
	$(VENV_PYTHON) -m benchmarks.serving $(ARGS)

# Replays the real KuaiRand sample through DreamUMM and its baselines and writes docs/evaluation.md;
# pass options with ARGS, e.g. make evaluate ARGS="--events other.csv --report /tmp/evaluation.md".
# It needs only the virtualenv: no Java, Maven, broker or Flink job.
evaluate: $(STAMP)
	$(VENV)/bin/dreamumm evaluate $(ARGS)

setup: $(STAMP) jars

baselines: $(BASELINES_STAMP)

$(BASELINES_STAMP): $(BASELINES_REQUIREMENTS)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BASELINES_VENV)/bin/python || $(PYTHON) -m venv $(BASELINES_VENV)
	$(BASELINES_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BASELINES_VENV)/bin/python -m pip install --quiet -r $(BASELINES_REQUIREMENTS)
	rm -f $(BASELINES_VENV)/.installed-*
	touch $@

jars: $(STAMP)
	@if [ -f $(VENV)/.just-installed ]; then rm $(VENV)/.just-installed; \
	else echo "reused the virtualenv in $(VENV) (pyproject.toml unchanged)"; fi
	$(VENV)/bin/dreamumm setup

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(VENV_PYTHON) || $(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install --quiet --upgrade pip
	$(VENV_PYTHON) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP) $(VENV)/.just-installed

broker-stop:
	@if [ -x $(VENV)/bin/dreamumm ]; then $(VENV)/bin/dreamumm broker stop; else echo "no virtualenv, so no broker to stop"; fi

clean: broker-stop
	rm -rf $(VENV) $(BASELINES_VENV) .cache var jvm/target *.egg-info .pytest_cache .hypothesis
