# Lancet: the two commands a new user runs are `make demo` and `make test`.
SWIFT ?= swift
MODEL := models/SmolLM2-135M-Instruct.Q4_1.gguf
RELEASE_BIN := .build/release/lancet
WIKI := ../shared/data/wikitext-2/wiki.test.raw

.PHONY: demo test setup model build clean

setup:
	@scripts/setup

model:
	@scripts/fetch-model

build: setup
	$(SWIFT) build -c release --product lancet

## Fetches the model, builds, and shows what Lancet sees in it.
demo: setup model build
	$(RELEASE_BIN) inspect $(MODEL)
	@echo
	@echo "== tokenize: the first line of the evaluation text"
	$(RELEASE_BIN) tokenize --model $(MODEL) "The capital of France is Paris."

## Runs the test suite, optimised (real-model tests need a release build), after installing what is missing.
test: setup model
	$(SWIFT) build -c release --build-tests -Xswiftc -enable-testing
	$(SWIFT) test -c release -Xswiftc -enable-testing --skip-build

clean:
	rm -rf .build
