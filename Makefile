# Entry points for development. `make demo` and `make test` set everything up on first use.
#   make test PYTEST_ARGS='-k tracker -x'     pass arguments to pytest
#   make demo DEMO_ARGS='--help'              pass arguments to the demo
SHELL := /bin/bash

PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=
# Datasets for benchmarks and evaluations (fer2013/, bandai_motion/, video/), never shipped.
DATA ?= ../shared/data

.PHONY: help setup test demo bench clean distclean

help:
	@echo 'make setup      create .venv and build the package (fast when nothing changed)'
	@echo 'make test       run the tests (PYTEST_ARGS=...)'
	@echo 'make demo       run the demo (DEMO_ARGS=...)'
	@echo 'make bench      face accuracy, face and gesture pipeline benchmarks on DATA=$(DATA),'
	@echo '                body_pose accuracy, all nodes on a 2-core CPU, node start-up and'
	@echo '                shutdown times'
	@echo 'make clean      remove build/ install/ log/'
	@echo 'make distclean  clean, and remove .venv'

setup:
	bash tools/setup.sh

test: setup
	bash tools/run_tests.sh $(PYTEST_ARGS)

demo: setup
	bash tools/in_env.sh python -m emorec_ros.cli.demo $(DEMO_ARGS)

bench: setup
	bash tools/in_env.sh python bench/face_accuracy.py --data $(DATA)
	bash tools/in_env.sh python bench/face_pipeline.py --data $(DATA) $(BENCH_ARGS)
	bash tools/in_env.sh python bench/face_explain.py --data $(DATA)
	bash tools/in_env.sh python bench/face_outside_fer.py --data $(DATA)
	bash tools/in_env.sh python bench/gesture_pipeline.py --data $(DATA)
	bash tools/in_env.sh python bench/pose_accuracy.py --data $(DATA)
	bash tools/in_env.sh python bench/robot_cpu.py --data $(DATA)
	bash tools/in_env.sh python bench/node_lifecycle.py

clean:
	rm -rf build install log .pytest_cache

distclean: clean
	rm -rf .venv
