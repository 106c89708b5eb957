# Ballast: `make run` builds the default variant and boots it in QEMU; `make test` runs every test.
VARIANT ?= qemu
# ARCH=arm64 builds (and `make run` boots, under qemu-system-aarch64 with AAVMF) the variant's arm64
# image, in build/<variant>-arm64.
ARCH    ?= amd64
BUILD   := build/$(VARIANT)$(if $(filter-out amd64,$(ARCH)),-$(ARCH))
DISK    := $(BUILD)/disk.raw
GO      ?= go
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: all deps keys image variants run test unit image-test vet clean repro bench lock

all: image

deps:
	@bash scripts/host-deps.sh

# The builder digests all of its inputs and does nothing when the outputs already match them.
image: deps keys
	$(GO) run ./builder/cmd/ballast build --variant $(VARIANT) --arch $(ARCH)

# The other variants the image tests boot beside $(VARIANT): metal (and its installer ISO and
# netboot directory), aws and vmware, each in build/<name>; and the arm64 builds of qemu, aws and
# metal, in build/<name>-arm64 (tests/image/arm64_test.go).
TEST_VARIANTS := metal aws vmware
ARM64_VARIANTS := qemu aws metal
variants: deps keys
	@for v in $(TEST_VARIANTS); do $(GO) run ./builder/cmd/ballast build --variant $$v || exit 1; done
	@for v in $(ARM64_VARIANTS); do $(GO) run ./builder/cmd/ballast build --variant $$v --arch arm64 || exit 1; done

# The owner's Secure Boot and PCR signing keys for development builds of signed variants
# (qemu-prod's [secure-boot] keys). Made once per clone; a real owner makes theirs with
# `ballast keys init` and keeps PK.key and KEK.key offline.
keys: build/keys/db.crt
build/keys/db.crt:
	$(GO) run ./builder/cmd/ballast keys init build/keys --name "Ballast development"

# Two clean builds of the same commit must give byte-identical trees, every intermediate artifact
# included. The second starts from an empty cache of derived artifacts (Go components, unpacked
# packages): only verified downloads and the machine's dev PKI are shared, so a nondeterministic
# step whose output is cached cannot hide.
# Each architecture of the variant is checked the same way (REPRO_ARCHS).
REPRO_ARCHS ?= amd64 arm64
repro: deps keys
	@for a in $(REPRO_ARCHS); do \
		rm -rf build/repro-$$a-1 build/repro-$$a-2 build/repro-cache && \
		$(GO) run ./builder/cmd/ballast build --variant $(VARIANT) --arch $$a --out build/repro-$$a-1 && \
		$(GO) run ./builder/cmd/ballast build --variant $(VARIANT) --arch $$a --out build/repro-$$a-2 --work-cache $(CURDIR)/build/repro-cache && \
		bash scripts/compare-trees.sh build/repro-$$a-1 build/repro-$$a-2 || exit 1; \
	done
	rm -rf build/repro-cache

# Boots a copy of the image grown to 2 GiB (the data partition fills it on first boot), keeping the copy
# across runs so settings persist. Serial console on this terminal: Ctrl-A X quits. The host API is
# reachable from the host with the dev PKI:
#   go run ./apiserver/cmd/apiclient --endpoint https://127.0.0.1:50443 --pki build/qemu/pki get settings
run: image
	@if [ ! -f $(BUILD)/run.raw ] || [ $(DISK) -nt $(BUILD)/run.raw ]; then \
		cp --sparse=always $(DISK) $(BUILD)/run.raw && truncate -s 2G $(BUILD)/run.raw; fi
	$(GO) run ./tests/qemu/cmd/bootvm --arch $(ARCH) --disk $(BUILD)/run.raw --hostfwd tcp:127.0.0.1:50443-:50443 $(RUN_TRUST)

# A signed variant (qemu-prod, metal) boots on Secure Boot firmware with a software TPM; the machine's
# NVRAM and TPM are kept beside run.raw, so it enrolls its keys and encrypts /local once.
RUN_TRUST = $(if $(filter qemu-prod metal,$(VARIANT)),--secure-boot --tpm $(BUILD)/run-tpm --ovmf-vars $(BUILD)/run-vars.fd)

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags ballast_installer ./init/initramfs/...

# The apiserver and the inits are where goroutines share state (group commit, the apply queue, the
# supervisor, the console), so their tests run under the race detector; the rest run without it,
# which is several times faster. -race needs cgo, hence gcc among the host deps.
# The control plane's own test (tests/k8scluster) is not among them: on a cold machine it would
# compile Kubernetes (tens of minutes) within go test's default 10; `make test` runs it after the
# image tests, whose binary compiles it beside the guests, on the cache they fill.
RACE_PKGS := ./apiserver/... ./init/...
unit: deps vet
	$(GO) test -count=1 -race $(RACE_PKGS)
	$(GO) test -count=1 $$($(GO) list ./... | grep -v -E "/tests/image|/tests/k8scluster$$|^$$($(GO) list -m)/(apiserver|init)(/|$$)")

# The image tests that boot QEMU run IMAGE_TEST_PARALLEL at a time (tests/image/main_test.go).
# The k8s variant (build/k8s) and the control plane its test joins are built by the test binary
# itself, beside the first tests, when the caches are cold: that compile fills cores the guests
# leave idle (tests/image/prebuild_test.go).
IMAGE_TEST_PARALLEL ?= 2
image-test: image variants
	BALLAST_BUILD_DIR=$(CURDIR)/$(BUILD) $(GO) test -count=1 -v -timeout 80m -parallel $(IMAGE_TEST_PARALLEL) ./tests/image/

# The control plane's test and the pinned Go components' own test run last, on the cache the image
# build has just filled; the latter checks that the build's components are cache hits and that the
# cached binaries run.
# The Kubernetes components' test runs the kubelet, control plane, etcd, runsc and containerd with
# CRI that the k8s image tests built (cache hits), the arm64 ones under qemu-user; the pod policy's
# test drives that containerd on this host.
test: unit image-test repro
	$(GO) test -count=1 -timeout 60m ./tests/k8scluster/
	BALLAST_BUILD_COMPONENTS=1 $(GO) test -count=1 -run '^(TestBuildPinnedComponents(ARM64)?|TestBuildKubernetesComponents(ARM64)?)$$' ./packages/gocomponents/
	BALLAST_CRI_TEST=1 $(GO) test -count=1 -run '^TestCRI$$' ./runtime/nripolicy/

clean:
	rm -rf build

# Build and boot figures: prints a table and writes build/bench.json.
bench: deps
	$(GO) run ./tests/cmd/bench --variant $(VARIANT)
	@echo "host API (p50/p99 per request; RSS of the real binary at idle):"
	$(GO) test -run '^$$' -bench . ./apiserver/daemon/ ./apiserver/cmd/apiserver/
	@echo "one update under TCG: v1 applies v2 and blesses it (seconds; MiB downloaded against the payload and the root)"
	$(GO) test -run '^$$' -bench Update -benchtime 1x -timeout 30m ./tests/image/
	@echo "Secure Boot + TPM unlock against neither, one signed image on two machines (seconds to ready; first-boot encryption of /local)"
	$(GO) test -run '^$$' -bench SecureBootBoot -benchtime 1x -timeout 30m ./tests/image/
	@echo "the metal installer ISO: its size, and from its boot to the installed host's ready line (seconds); each variant's disk.raw in zstd (MiB)"
	$(MAKE) variants
	BALLAST_BUILD_DIR=$(CURDIR)/build/qemu $(GO) test -run '^$$' -bench 'Installer|VariantSizes' -benchtime 1x -timeout 30m ./tests/image/
	@echo "the k8s node under TCG: QEMU start to Ready (s), idle memory in use (MiB), pod start p50 runc/gVisor (s), disk.raw in zstd (MiB)"
	BALLAST_BUILD_DIR=$(CURDIR)/build/qemu $(GO) test -run '^$$' -bench K8sNode -benchtime 1x -timeout 40m ./tests/image/

# Refresh packages/debian.lock from Debian's signed archive index (keys in packages/keys).
lock:
	$(GO) run ./builder/cmd/ballast lock
