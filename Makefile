# Ballast: `make run` builds the default variant and boots it in QEMU; `make test` runs every test.
VARIANT ?= qemu
BUILD   := build/$(VARIANT)
DISK    := $(BUILD)/disk.raw
GO      ?= go
export PATH := $(PATH):/usr/sbin:/sbin

# Everything an image is made of; the image is rebuilt when any of it changes.
SOURCES := $(shell find builder init apiserver packages images selinux variants -type f 2>/dev/null) go.mod go.sum VERSION

.PHONY: all deps image run test unit image-test vet clean

all: image

deps:
	@bash scripts/host-deps.sh

$(DISK): $(SOURCES) | deps
	$(GO) run ./builder/cmd/ballast build --variant $(VARIANT)

image: $(DISK)

# Boots a copy of the image grown to 2 GiB (the data partition fills it on first boot), keeping the copy
# across runs so settings persist. Serial console on this terminal: Ctrl-A X quits.
run: deps $(DISK)
	@if [ ! -f $(BUILD)/run.raw ] || [ $(DISK) -nt $(BUILD)/run.raw ]; then \
		cp --sparse=always $(DISK) $(BUILD)/run.raw && truncate -s 2G $(BUILD)/run.raw; fi
	$(GO) run ./tests/qemu/cmd/bootvm --disk $(BUILD)/run.raw

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

unit: deps vet
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /tests/image)

image-test: deps $(DISK)
	BALLAST_BUILD_DIR=$(CURDIR)/$(BUILD) $(GO) test -count=1 -v -timeout 30m ./tests/image/

test: unit image-test

clean:
	rm -rf build
