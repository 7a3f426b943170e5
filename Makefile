# The two commands a newcomer runs on a fresh Debian 12 machine (as root):
#   make up    installs what is missing, builds, and boots a VM in the built-in lab
#   make test  installs the same, builds, and runs every test (QEMU boots included)
SHELL := /bin/bash
NODE_GYP := $(shell npm root -g 2>/dev/null)/npm/node_modules/node-gyp/bin/node-gyp.js

.PHONY: deps build native up test bench clean

deps:
	@scripts/install-deps.sh

native: deps
	@if [ -f native/binding.gyp ]; then \
	  if [ ! -f native/build/Release/diskless_raw.node ] || [ -n "$$(find native -maxdepth 1 \( -name '*.c' -o -name binding.gyp \) -newer native/build/Release/diskless_raw.node)" ]; then \
	    node $(NODE_GYP) rebuild --directory native --nodedir=/usr >/dev/null; fi; fi

build: deps native
	@npx tsc -p tsconfig.json

up: build
	node dist/src/cli/main.js up

test: build
	node scripts/run-tests.mjs

bench: build
	npm run bench:boot
	npm run bench:tftp

clean:
	rm -rf dist native/build
