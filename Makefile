# Lancet: the two commands a new user runs are `make demo` and `make test`.
SWIFT ?= swift
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf
LANCET := .build/release/lancet
WIKI := ../shared/data/wikitext-2/wiki.test.raw

.PHONY: demo test fuzz setup model build clean

setup:
	@scripts/setup

model:
	@scripts/fetch-model

build: setup
	$(SWIFT) build -c release --product lancet

## Fetches the model, builds, shows the model, measures it, and runs the quickstart recipe
## (50% magnitude pruning with least-squares repair), printing size, speed and perplexity before and after.
demo: setup model build
	$(LANCET) inspect $(MODEL)
	@echo
	$(LANCET) tokenize --model $(MODEL) "The capital of France is Paris."
	@echo
	$(LANCET) eval $(MODEL) --data $(WIKI) --max-windows 4
	@echo
	$(LANCET) generate $(MODEL) --chat --prompt "What is the capital of France?" --max-tokens 48
	@echo
	$(LANCET) run recipes/quickstart.yaml --force

## Runs the test suite, optimised (real-model tests need a release build), after installing what is missing.
test: setup model
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	$(SWIFT) test -c release -Xswiftc -enable-testing --skip-build

## Seeded hostile inputs (GGUF, safetensors, config.json, tokenizer.json, recipes) through the release lancet:
## N cases split over the five kinds, plus the regression cases; fails on any crash, hang, over-bound allocation,
## silent accept of an invalid file or file left behind. `make test` runs a smaller set (Tests/LancetFuzzTests).
N ?= 1000
SEED ?= 1
fuzz: setup
	$(SWIFT) build -c release --product lancet
	$(SWIFT) build -c release --product lancet-fuzz
	.build/release/lancet-fuzz --cases $(N) --seed $(SEED) --lancet $(LANCET)

clean:
	rm -rf .build
