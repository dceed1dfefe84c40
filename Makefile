# vgzoo: every target that needs the environment depends on `install`, so each
# one works as the first command on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Offline data beside the checkout (this project's machines keep the whole MNIST in
# ../shared/data); elsewhere keras.datasets downloads it on first use.
ifeq ($(origin VGZOO_DATA_DIR),undefined)
ifneq ($(wildcard ../shared/data/mnist),)
export VGZOO_DATA_DIR := $(abspath ../shared/data)
endif
endif

# Knobs for `make train`; empty ones are left to the model's defaults.
MODEL        ?= resnet20
DATASET      ?= mnist
EPOCHS       ?= 10
BATCH_SIZE   ?= 128
OPTIMIZER    ?= sgd
LR           ?=
SCHEDULE     ?= step
SEED         ?= 0
HIST_EVERY   ?= 50
LIMIT        ?=
LOGDIR       ?= tensorboard_logs
ACTIVATION   ?=
INITIALIZER  ?=
BATCH_NORM   ?=
PREACTIVATION ?=
DEPTH        ?=
ARGS         ?=
PORT         ?= 6006
BENCH_ARGS   ?=
# `make compare MODELS="rnn lstm" DATASET=adding ARGS="--seq-len 200"`: a report in reports/.
MODELS       ?= plain20 resnet20
# `make pretrained ENTRIES="lstm/adding rnn-copy-T100"`: which manifest entries (default all).
ENTRIES      ?=

# The sequence group's shared budget, that of the pretrained entries (models/manifest.json):
# every member gets the same steps, batch, optimizer, clipping and seed (Adam 1e-3 with a
# clipped global norm, as in the long-sequence literature since Pascanu et al. 2013).
SEQUENCE_MODELS ?= rnn irnn lstm gru transformer
ADDING_EPOCHS   ?= 60
COPY_EPOCHS     ?= 20
SEQUENCE_FLAGS = --optimizer adam --lr 1e-3 --weight-decay 0 --schedule constant \
	--global-clipnorm 1 --batch-size 32 --steps-per-epoch 100 --seed $(SEED)
SEQ_RUN_FLAGS = $(SEQUENCE_FLAGS) --hist-every $(HIST_EVERY) --logdir $(LOGDIR) --verbose 2

TRAIN_FLAGS = --dataset $(DATASET) --epochs $(EPOCHS) --batch-size $(BATCH_SIZE) \
	--optimizer $(OPTIMIZER) --schedule $(SCHEDULE) --seed $(SEED) \
	--hist-every $(HIST_EVERY) --logdir $(LOGDIR) \
	$(if $(LR),--lr $(LR)) $(if $(LIMIT),--limit $(LIMIT)) \
	$(if $(ACTIVATION),--activation $(ACTIVATION)) \
	$(if $(INITIALIZER),--initializer $(INITIALIZER)) \
	$(if $(BATCH_NORM),--batch-norm $(BATCH_NORM)) \
	$(if $(PREACTIVATION),--preactivation $(PREACTIVATION)) \
	$(if $(DEPTH),--depth $(DEPTH)) $(ARGS)

.PHONY: install test test-slow test-browser demo train tensorboard clean clean-logs bench \
	train-adding train-copy train-seqmnist train-pmnist report-adding report-copy \
	train-plain-vs-resnet-mnist train-plain-vs-resnet-cifar10 \
	train-mlp-sigmoid-mnist train-mlp-sigmoid-cifar10 pretrained pretrained-verify reproduce-he2016 \
	compare compare-plain-vs-resnet-mnist compare-plain-vs-resnet-cifar10 compare-adding compare-copy

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Under 10 minutes on 2 cores; the `slow` tests (real worker processes, signals, kills,
# several TensorFlow start-ups each) run in `make test-slow`, which CI runs too.
test: install
	$(BIN)/python -m pytest -q --durations=10 -m "not slow"

test-slow: install
	$(BIN)/python -m pytest -q --durations=10 -m slow

# The vgzoo TensorBoard tab in headless Chromium (Debian's `chromium`) on tiny real runs:
# TensorBoard started on them, the rendered page checked. Skips when Chromium is absent;
# VGZOO_BROWSER_ARTIFACTS=DIR keeps the screenshots. Not part of `make test`.
test-browser: install
	$(BIN)/python -m pytest -q tests/browser/tab_check.py

# Never part of `make test`: timings, not checks. BENCH_ARGS="--rounds 9" for more rounds, "--steps 50" for short epochs.
bench: install
	$(BIN)/python bench/overhead.py $(BENCH_ARGS)

demo: install
	$(BIN)/vgzoo demo --logdir $(LOGDIR)

train: install
	$(BIN)/vgzoo train $(MODEL) $(TRAIN_FLAGS)

# Matched pairs: both members at the same budget and seed, side by side in TensorBoard.
train-plain-vs-resnet-mnist: install
	$(MAKE) train MODEL=plain20 DATASET=mnist EPOCHS=$(EPOCHS)
	$(MAKE) train MODEL=resnet20 DATASET=mnist EPOCHS=$(EPOCHS)

train-plain-vs-resnet-cifar10: install
	$(MAKE) train MODEL=plain56 DATASET=cifar10 EPOCHS=$(EPOCHS)
	$(MAKE) train MODEL=resnet56 DATASET=cifar10 EPOCHS=$(EPOCHS)

train-mlp-sigmoid-mnist: install
	$(MAKE) train MODEL=mlp20 DATASET=mnist ACTIVATION=sigmoid EPOCHS=$(EPOCHS)
	$(MAKE) train MODEL=resmlp20 DATASET=mnist ACTIVATION=sigmoid EPOCHS=$(EPOCHS)

train-mlp-sigmoid-cifar10: install
	$(MAKE) train MODEL=mlp20 DATASET=cifar10 ACTIVATION=sigmoid EPOCHS=$(EPOCHS)
	$(MAKE) train MODEL=resmlp20 DATASET=cifar10 ACTIVATION=sigmoid EPOCHS=$(EPOCHS)

# Sequence groups: each member a run of its own under $(LOGDIR)/<task>/, overlaid in TensorBoard;
# on adding, the LSTM with chrono initialisation (Tallec & Ollivier 2018) too.
train-adding: install
	for model in $(SEQUENCE_MODELS); do $(BIN)/vgzoo train $$model --dataset adding --seq-len 200 \
		--epochs $(ADDING_EPOCHS) $(SEQ_RUN_FLAGS) $(ARGS) || exit $$?; done
	$(BIN)/vgzoo train lstm --chrono true --dataset adding --seq-len 200 \
		--epochs $(ADDING_EPOCHS) $(SEQ_RUN_FLAGS) $(ARGS)

train-copy: install
	for model in $(SEQUENCE_MODELS); do $(BIN)/vgzoo train $$model --dataset copy --seq-len 100 \
		--epochs $(COPY_EPOCHS) $(SEQ_RUN_FLAGS) $(ARGS) || exit $$?; done

# The README's results tables: every run under $(LOGDIR)/<task>/ side by side, in reports/<task>/.
report-adding report-copy: report-%: install
	$(BIN)/vgzoo compare --runs $(LOGDIR)/$*/*/* --report-dir reports/$*

# Needs the MNIST training split (see "Offline data" in the README).
train-seqmnist train-pmnist: train-%: install
	for model in $(SEQUENCE_MODELS); do \
		$(BIN)/vgzoo train $$model --dataset $* --optimizer adam --lr 1e-3 --weight-decay 0 \
			--global-clipnorm 1 --batch-size $(BATCH_SIZE) --epochs $(EPOCHS) --seed $(SEED) \
			--hist-every $(HIST_EVERY) --logdir $(LOGDIR) $(ARGS) || exit $$?; done

# He et al. 2016, Figure 6 for $(DATASET): plain20/56 and resnet20/56 at one budget and seed
# (finished runs named he2016-e$(HE_EPOCHS) are reused; a rerun resumes), then the figure and table.
HE_EPOCHS ?= 4
HE_FIGURE ?= reports/he2016-$(DATASET).png
reproduce-he2016: install
	$(BIN)/python -m vgzoo.analysis.he2016 --dataset $(DATASET) --epochs $(HE_EPOCHS) \
		--logdir $(LOGDIR) --figure $(HE_FIGURE)

# Members trained at the same budget and seed under one log folder, then report.md with a
# table, verdicts and figures in reports/<dataset>-<models>-<stamp>/.
compare: install
	$(BIN)/vgzoo compare $(MODELS) $(TRAIN_FLAGS)

compare-plain-vs-resnet-mnist: install
	$(MAKE) compare MODELS="plain20 resnet20" DATASET=mnist EPOCHS=$(EPOCHS)

compare-plain-vs-resnet-cifar10: install
	$(MAKE) compare MODELS="plain56 resnet56" DATASET=cifar10 EPOCHS=$(EPOCHS)

compare-adding: install
	$(BIN)/vgzoo compare $(SEQUENCE_MODELS) --dataset adding --seq-len 200 \
		--epochs $(ADDING_EPOCHS) $(SEQUENCE_FLAGS) --logdir $(LOGDIR) $(ARGS)

compare-copy: install
	$(BIN)/vgzoo compare $(SEQUENCE_MODELS) --dataset copy --seq-len 100 \
		--epochs $(COPY_EPOCHS) $(SEQUENCE_FLAGS) --logdir $(LOGDIR) $(ARGS)

# Each manifest entry's recorded command into $(LOGDIR)/pretrained, then published into
# models/ with its test metrics and sha256. Image entries need their training data.
pretrained: install
	$(BIN)/vgzoo reproduce $(ENTRIES) --logdir $(LOGDIR)/pretrained

# Re-measures every published checkpoint; passes (saying so) when none is published.
pretrained-verify: install
	$(BIN)/vgzoo verify

tensorboard: install
	@echo "TensorBoard: http://127.0.0.1:$(PORT)/  (Ctrl-C to stop)"
	$(BIN)/tensorboard --logdir $(LOGDIR) --host 127.0.0.1 --port $(PORT)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Deletes every training run under $(LOGDIR): kept apart from `clean` on purpose.
clean-logs:
	find $(LOGDIR) -mindepth 1 -not -name .gitkeep -delete
