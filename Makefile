PYTHON ?= python3
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install demo test bench

install:
	$(PYTHON) -m pip install -q -r requirements.txt
	$(PYTHON) -m pip install -q --no-deps --no-build-isolation -e .  # built with the lock's setuptools

demo: install
	bash examples/demo/run_demo.sh

test: install
	$(PYTHON) -m pytest -q -n 2

bench: install
	$(PYTHON) benchmarks/bench_tokenize.py
	$(PYTHON) benchmarks/bench_models.py
