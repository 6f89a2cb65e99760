# Two commands get you going: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# A second environment proves the model host also runs on tflite-runtime 2.14 (numpy<2), as on many Pi tutorials.
TFLITE_VENV ?= .venv-tflite
TFLITE_STAMP := $(TFLITE_VENV)/.installed-stamp

LINT_PATHS := kit course bench tests

.PHONY: lint demo test test-fast test-tflite lab labs grade bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[course,emulator,train,sumo,dev]'
	touch $(STAMP)

# A simulated day of the whole app: sensors, store, camera model, adaptive lights, a local cloud; then the
# fixed-time baseline on the same traffic, and a plot (out/demo-day.png).
demo: $(STAMP)
	rm -f out/demo.db out/demo.db-wal out/demo.db-shm
	$(VENV)/bin/kit run intersection --hours 24 --fresh --db out/demo.db --sample-period 10 \
		--cloud --local-cloud --no-mqtt --compare --plot out/demo-day.png

test: $(STAMP) $(TFLITE_STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)
	# tests/grading runs once, through the real grader on the solutions and the blank labs
	# (tests/course/test_grade_course.py), not a second time in-process here; `pytest tests/grading` still works.
	$(PY) -m pytest tests kit --ignore=tests/grading --durations=15
	$(MAKE) --no-print-directory test-tflite

# ruff (settings in pyproject.toml): fix what can be fixed, format, then show what is left to fix by hand
lint: $(STAMP)
	$(VENV)/bin/ruff check --fix $(LINT_PATHS)
	$(VENV)/bin/ruff format $(LINT_PATHS)
	$(VENV)/bin/ruff check $(LINT_PATHS)

test-fast: $(STAMP)
	$(PY) -m pytest tests kit --ignore=tests/grading -m "not slow" -x -q

$(TFLITE_STAMP): pyproject.toml
	test -x $(TFLITE_VENV)/bin/python || $(PYTHON) -m venv $(TFLITE_VENV)
	$(TFLITE_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(TFLITE_VENV)/bin/python -m pip install --quiet "numpy<2" "tflite-runtime==2.14.0" pytest==9.2.0 pytest-timeout==2.4.0 gpiozero==2.0.1.post3
	$(TFLITE_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $(TFLITE_STAMP)

# Only the files that carry tflite-marked tests: the others may import what this environment lacks.
test-tflite: $(TFLITE_STAMP)
	KIT_RUNTIME=tflite_runtime $(TFLITE_VENV)/bin/python -m pytest -q -p no:cacheprovider -m tflite \
		$$(grep -rlE 'mark\.tflite' tests/kit)

# The labs name the `edge-python` kernel: this environment, installed for the user so any Jupyter finds it.
lab: $(STAMP)
	$(PY) -m ipykernel install --user --name edge-python --display-name "Python 3 (Edge Python)"
	$(VENV)/bin/jupyter lab labs/

labs: $(STAMP)
	$(PY) -m course.build

grade: $(STAMP)
	$(PY) -m course.grade submissions/ --out grades.csv

bench: $(STAMP)
	for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(TFLITE_VENV) .pytest_cache
