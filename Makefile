# Sentinel. The two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
GO    ?= go
BIN   := bin
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_TIME ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
PKG := github.com/sentinel-edge/sentinel/internal/buildinfo
LDFLAGS := -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).BuildTime=$(BUILD_TIME)
# Static, stripped ARM builds (cgo for go-sqlite3 with Debian's cross compilers).
ARM_TAGS := osusergo,netgo,sqlite_omit_load_extension
ARM_LDFLAGS := -s -w -extldflags -static $(LDFLAGS)
TEST_TIMEOUT ?= 10m
# The pillar build: the face detector (drivers/facedetect: OpenCV's cascade classifier) behind
# the build tag opencv, linked dynamically against Debian 12's OpenCV 4.6 (objdetect, imgproc,
# core). Other builds stay static and free of it. (-tags opencv,gocv binds it through gocv
# v0.25.0 instead, which links every OpenCV module: docs/BENCHMARKS.md.)
FACE_TAGS := opencv
FACE_ENV := CGO_ENABLED=1
# arm64: against an arm64 sysroot of Debian's OpenCV (scripts/install-opencv-arm64.sh).
ARM64_SYSROOT ?= /var/cache/sentinel/sysroot-arm64
FACE_ARM64_ENV := CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ \
  CGO_CPPFLAGS='-I$(ARM64_SYSROOT)/usr/include/opencv4 -I$(ARM64_SYSROOT)/usr/include/aarch64-linux-gnu/opencv4' \
  CGO_LDFLAGS='-L$(ARM64_SYSROOT)/usr/lib/aarch64-linux-gnu $(foreach d,usr/lib/aarch64-linux-gnu lib/aarch64-linux-gnu usr/lib,-Wl,-rpath-link,$(ARM64_SYSROOT)/$(d))'
FACE_PKGS := ./drivers/facedetect/... ./agent/selftest/

.PHONY: all build field-bins build-amd64 build-arm64 build-armv7 build-pillar build-pillar-arm64 package-pillar test-face-arm64 cross package test test-unit test-e2e test-cross test-package test-field soak test-cluster test-fleet demo fuzz vet fmt clean

all: build

build: $(BIN)/sentinel $(BIN)/sentinel-sim

# Always rebuilt; go's cache makes that cheap.
.PHONY: $(BIN)/sentinel $(BIN)/sentinel-sim
$(BIN)/sentinel:
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/sentinel
$(BIN)/sentinel-sim:
	$(GO) build -ldflags '$(LDFLAGS)' -o $@ ./cmd/sentinel-sim

build-arm64:
	scripts/install-cross.sh arm64
	CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc \
	  $(GO) build -trimpath -tags $(ARM_TAGS) -ldflags '$(ARM_LDFLAGS)' -o $(BIN)/sentinel-linux-arm64 ./cmd/sentinel

build-armv7:
	scripts/install-cross.sh armhf
	CGO_ENABLED=1 GOOS=linux GOARCH=arm GOARM=7 CC=arm-linux-gnueabihf-gcc \
	  $(GO) build -trimpath -tags $(ARM_TAGS) -ldflags '$(ARM_LDFLAGS)' -o $(BIN)/sentinel-linux-armv7 ./cmd/sentinel

cross: build-arm64 build-armv7

# The pillar binary (amd64): tag opencv, dynamically linked against OpenCV.
build-pillar:
	scripts/install-deps.sh face
	$(FACE_ENV) $(GO) build -tags $(FACE_TAGS) -ldflags '$(LDFLAGS)' -o $(BIN)/sentinel-pillar ./cmd/sentinel
	$(FACE_ENV) $(GO) build -tags $(FACE_TAGS) -o $(BIN)/facebench ./drivers/facedetect/facebench

# The arm64 pillar binary and the detector's test binary, cross-compiled against the arm64
# sysroot (made once, ~1 min download, ~600 MB).
build-pillar-arm64:
	scripts/install-cross.sh arm64
	scripts/install-deps.sh face-cross
	scripts/install-opencv-arm64.sh >/dev/null
	$(FACE_ARM64_ENV) $(GO) build -trimpath -tags $(FACE_TAGS) -ldflags '-s -w $(LDFLAGS)' -o $(BIN)/sentinel-pillar-linux-arm64 ./cmd/sentinel
	$(FACE_ARM64_ENV) $(GO) test -c -tags $(FACE_TAGS) -o $(BIN)/facedetect-linux-arm64.test ./drivers/facedetect
	$(FACE_ARM64_ENV) $(GO) build -tags $(FACE_TAGS) -o $(BIN)/facebench-linux-arm64 ./drivers/facedetect/facebench

# dist/sentinel-pillar_<version>_amd64.deb (and arm64 when built): depends on the OpenCV runtime.
package-pillar: build-pillar
	PKG_VERSION=$(PKG_VERSION) scripts/package-pillar.sh amd64 $$([ -x $(BIN)/sentinel-pillar-linux-arm64 ] && echo arm64)

# The detector's tests on arm64 under qemu-user, with the sysroot's libraries; then the arm64
# pillar agent itself passing people by face, end to end (TestE2EFaceOnly with the arm64 build
# under qemu: scripts/pillar-arm64-qemu.sh).
test-face-arm64: build build-pillar-arm64
	scripts/install-deps.sh face
	cd drivers/facedetect && SENTINEL_REQUIRE_FACE=1 LD_LIBRARY_PATH=/usr/lib/aarch64-linux-gnu:/lib/aarch64-linux-gnu:/usr/lib \
	  qemu-aarch64-static -L $(ARM64_SYSROOT) $(CURDIR)/$(BIN)/facedetect-linux-arm64.test -test.v -test.run 'TestDetect|TestCheckCascade' -test.timeout 10m
	SENTINEL_REQUIRE_MOSQUITTO=1 SENTINEL_REQUIRE_FACE=1 SENTINEL_BIN_DIR=$(CURDIR)/$(BIN) ARM64_SYSROOT=$(ARM64_SYSROOT) \
	  SENTINEL_PILLAR_BIN=$(CURDIR)/scripts/pillar-arm64-qemu.sh SENTINEL_PILLAR_ARCH=arm64 \
	  $(GO) test -count=1 -timeout 10m -run '^TestE2EFaceOnly$$' -v ./e2e/

# The static amd64 binary that goes into the amd64 package (same tags and flags as ARM).
build-amd64:
	CGO_ENABLED=1 GOOS=linux GOARCH=amd64 \
	  $(GO) build -trimpath -tags $(ARM_TAGS) -ldflags '$(ARM_LDFLAGS)' -o $(BIN)/sentinel-linux-amd64 ./cmd/sentinel

# The three static binaries the packages ship, built side by side: a cold cgo build of SQLite
# takes a minute or more per architecture. The cross compilers are installed first, one at a
# time (apt holds a lock).
field-bins:
	scripts/install-cross.sh arm64
	scripts/install-cross.sh armhf
	$(MAKE) -j3 VERSION='$(VERSION)' COMMIT='$(COMMIT)' BUILD_TIME='$(BUILD_TIME)' build-amd64 build-arm64 build-armv7

# dist/sentinel_<version>_<arch>.deb for amd64, arm64 and armhf (nfpm, pinned; scripts/package.sh).
PKG_VERSION ?= $(shell scripts/pkg-version.sh)
package: field-bins
	PKG_VERSION=$(PKG_VERSION) scripts/package.sh amd64 arm64 armhf

# Field tests (.ci/run runs them after make test): the static binaries (ARM under qemu-user)
# end to end; the amd64 package installed into a throw-away root.
test-cross: build field-bins
	scripts/install-deps.sh cross
	SENTINEL_REQUIRE_MOSQUITTO=1 SENTINEL_BIN_DIR=$(CURDIR)/$(BIN) SENTINEL_CROSS=1 \
	  $(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run TestField -v ./e2e/
	$(MAKE) test-face-arm64

test-package: package
	scripts/install-deps.sh package
	PKG_VERSION=$(PKG_VERSION) scripts/test-package.sh

test-field: test-cross test-package

# Unit tests and the end-to-end test (real Mosquitto, real HTTP, a pty, the built binaries).
# The face packages run a second time with the opencv tag: the detector on real frames.
test: build build-pillar
	scripts/install-deps.sh test
	scripts/install-deps.sh face
	gofmt_out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$gofmt_out" ]; then echo "gofmt needed: $$gofmt_out"; exit 1; fi
	$(GO) vet ./...
	$(FACE_ENV) $(GO) vet -tags $(FACE_TAGS) $(FACE_PKGS)
	SENTINEL_REQUIRE_MOSQUITTO=1 SENTINEL_REQUIRE_FACE=1 SENTINEL_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -race -timeout $(TEST_TIMEOUT) ./...
	SENTINEL_REQUIRE_FACE=1 SENTINEL_BIN_DIR=$(CURDIR)/$(BIN) $(FACE_ENV) $(GO) test -race -tags $(FACE_TAGS) -timeout $(TEST_TIMEOUT) $(FACE_PKGS)

test-e2e: build
	SENTINEL_REQUIRE_MOSQUITTO=1 SENTINEL_BIN_DIR=$(CURDIR)/$(BIN) $(GO) test -race -timeout $(TEST_TIMEOUT) -run E2E -v ./e2e/

# Scale and faults (scale/; not part of make test). Each prints a summary line and
# "N passed, N failed", and fails on a correctness property (a record lost, a seq reused or
# missing, out of order, a damaged database, an ID number in plain text).
#   make soak          the agent SIGKILLed and restarted SOAK_CYCLES times under 20 scans/s,
#                      Mosquitto restarted every 20th cycle (about 3 min for 200 cycles here)
#   make test-cluster  a three-node RabbitMQ cluster: the agent's node stopped ten times;
#                      a silent node, a slow node, a dead first URL (about 5 min here)
#   make test-fleet    FLEET_SIZE agents, Mosquitto stopped for 30 s (about 5 min for 100)
SOAK_CYCLES ?= 200
FLEET_SIZE ?= 100
SCALE_ENV = SENTINEL_SCALE=1 SENTINEL_REQUIRE_MOSQUITTO=1 SENTINEL_BIN_DIR=$(CURDIR)/$(BIN)
soak: build
	$(SCALE_ENV) SOAK_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -timeout 90m -run '^TestSoak$$' -v ./scale/

test-cluster: build
	scripts/install-deps.sh cluster
	$(SCALE_ENV) SENTINEL_REQUIRE_RABBITMQ=1 $(GO) test -count=1 -timeout 40m -run '^TestCluster$$' -v ./scale/

test-fleet: build
	$(SCALE_ENV) FLEET_SIZE=$(FLEET_SIZE) $(GO) test -count=1 -timeout 60m -run '^TestFleet$$' -v ./scale/

# Runs the agent end to end on a virtual scanner, the reference platform, a fake barrier and
# an embedded broker. DEMO_SECONDS=N stops it after N seconds.
# DEMO_STYLE=pillar make demo: the pillar build passes people by face alone (sim camera).
demo: build $(if $(filter pillar,$(DEMO_STYLE)),build-pillar)
	DEMO_STYLE=$(DEMO_STYLE) scripts/demo.sh

# Runs every fuzz target for FUZZTIME each (make test runs their seed corpora only).
FUZZTIME ?= 20s
fuzz:
	scripts/fuzz.sh $(FUZZTIME)

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) dist .demo
