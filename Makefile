# balancer — build, test and demo entry points. Every target installs what it needs first.
SHELL := /bin/bash
ifneq ($(wildcard /opt/swift/usr/bin),)
export PATH := /opt/swift/usr/bin:$(PATH)
endif

# No clang or llvm here: the datapath is compiled by the Swift toolchain's clang (bpf/programs/build.sh).
# umoci, skopeo and docker-registry build, read and push the container image (`make image`,
# e2e/image.sh, e2e/registry.sh; apache2-utils' htpasswd for its authenticated registry);
# python3-prometheus-client and prometheus (promtool) check the metrics. Without
# recommended packages (prometheus would bring node-exporter); the services docker-registry and
# prometheus start on a host with systemd are stopped and disabled again when `deps` installed them.
APT_PACKAGES := libbpf-dev linux-libc-dev libelf-dev zlib1g-dev libyaml-dev libjansson-dev pkg-config bpftool iproute2 \
	time curl openssl python3-yaml python3-jsonschema umoci skopeo docker-registry apache2-utils python3-prometheus-client prometheus
SWIFT ?= swift
BALANCER := .build/debug/balancer
RELEASE_BALANCER := .build/release/balancer
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FUZZ_SECONDS ?= 60

.PHONY: all deps build release bpf test fuzz golden demo bench fault image clean

# `deps` checks the packages once per package list: the stamp's name is a checksum of the list, so
# editing APT_PACKAGES (or `make clean`) checks again.
DEPS_STAMP := .build/deps-$(shell printf '%s' '$(APT_PACKAGES)' | cksum | cut -d' ' -f1).stamp

# Kernel suites need root. Without it a suite is skipped with a message and its name recorded in
# KERNEL_SKIPPED; `kernel_skips` at the end of a target fails the run under CI (CI=true), naming
# every suite that did not run, and elsewhere lists them.
KERNEL_SKIPPED := .build/kernel-suites-skipped
skip_kernel = echo "$(1) skipped: $(2)"; mkdir -p .build; echo "$(1)" >>$(KERNEL_SKIPPED)
define kernel_skips
	@if [ -s $(KERNEL_SKIPPED) ]; then \
		skipped=$$(tr '\n' ' ' <$(KERNEL_SKIPPED)); rm -f $(KERNEL_SKIPPED); \
		if [ "$$CI" = true ]; then echo "FAILED: kernel suites not run (CI=true needs root): $$skipped" >&2; exit 1; fi; \
		echo "kernel suites skipped (not root): $$skipped"; \
	fi
endef

all: build

# Installs the system packages the build and the tests use; does nothing when all are present.
deps: $(DEPS_STAMP)
	@command -v $(SWIFT) >/dev/null || { echo "swift not found (expected at /opt/swift/usr/bin)"; exit 1; }

$(DEPS_STAMP):
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		for svc in docker-registry prometheus; do \
			case " $$missing " in *" $$svc "*) \
				if [ -d /run/systemd/system ] && systemctl is-active -q $$svc 2>/dev/null; then \
					echo "stopping and disabling the $$svc service its package started (the tests run their own on 127.0.0.1)"; \
					$(SUDO) systemctl disable --now -q $$svc; \
				fi;; \
			esac; \
		done; \
	fi
	@mkdir -p .build && rm -f .build/deps-*.stamp && touch $@

# `swift build` compiles and embeds the datapath itself (Plugins/BPFObject).
build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release

# The agent's container image, without a container engine (deploy/image/build.sh,
# docs/deployment.md): the release binary and exactly the shared libraries it loads, from Debian's
# packages and the Swift runtime, as an OCI image layout at .build/image/oci tagged with the
# version, an OCI archive and a docker archive (.build/image/balancer-VERSION.{oci,docker}.tar)
# for air-gapped nodes, and .build/image/contents.txt (every file and its package).
image: deps
	$(SWIFT) build -c release
	bash deploy/image/build.sh $(RELEASE_BALANCER) .build/image

# The datapath object alone (clang -target bpf, with BTF), for verify.sh: the same script, compiler
# and flags as the object `swift build` embeds, so the same bytes before DWARF is stripped.
bpf: deps
	@mkdir -p .build/bpf
	sh bpf/programs/build.sh .build/bpf/balancer.bpf.o

test: deps bpf
	@rm -f $(KERNEL_SKIPPED)
	# The datapath's decisions, compiled as host C against mock maps (ASan/UBSan).
	sh bpf/programs/hosttest/run.sh
	# Every policy in fixtures/ and deploy/examples/ against the CRDs in deploy/crds/, and invalid
	# objects the CRDs must reject.
	python3 deploy/crds/validate.py
	# The kernel verifier accepts every program (private bpffs in a private mount namespace;
	# nothing is attached). Needs root.
	@if [ "$$(id -u)" = 0 ]; then sh bpf/programs/verify.sh .build/bpf/balancer.bpf.o; \
	else $(call skip_kernel,verify.sh,loading BPF programs needs root); fi
	$(SWIFT) build --build-tests
	# Coverage-guided fuzzers (fuzz/README.md), smoke: every seed of fuzz/corpus/, then a fixed
	# number of new inputs per target from a fixed random seed (35-45 s; the first instrumented
	# build of MapImage and Compiler adds about 2 min of CPU, later builds only relink).
	bash fuzz/build.sh
	FUZZ_SMOKE=1 bash fuzz/run.sh
	# deploy/ against the code: `kubectl kustomize deploy/agent` renders the CRDs, RBAC (exactly
	# what the watcher reads) and the DaemonSet (a version tag pulled IfNotPresent, requests,
	# startup probe, capabilities as docs/deployment.md's table, metrics on the node's address);
	# the systemd units of deploy/host pass `systemd-analyze verify`; every flag either passes
	# exists (`balancer <command> --help`).
	python3 deploy/check.py $(BALANCER)
	# The container image (deploy/image/build.sh) from the debug binary: unpacked, it runs `balancer
	# version` and compiles a fixture under chroot; skopeo reads it; it is pushed to a registry on
	# 127.0.0.1 and read back; built twice, one digest (e2e/image.sh, about 30 s). Needs root.
	@if [ "$$(id -u)" = 0 ]; then bash e2e/image.sh $(BALANCER); \
	else $(call skip_kernel,e2e/image.sh,umoci unpack and chroot need root); fi
	# `balancer push`/`pull` against real peers (e2e/registry.sh, about 20 s): Debian's docker-registry
	# on 127.0.0.1 (plain and with htpasswd basic auth from a config.json) and ORAS (the Python
	# `oras` package, pip-installed when missing) both ways; an OCI layout read by skopeo and oras;
	# wrong artifact types and corrupted blobs refused. Root only (it may apt/pip install).
	@if [ "$$(id -u)" = 0 ]; then bash e2e/registry.sh $(BALANCER); \
	else $(call skip_kernel,e2e/registry.sh,it installs its peers as root); fi
	# Real sockets through the programs: a test cgroup, two private network namespaces and a
	# private bpffs (the sandbox rules of e2e/README.md, e2e/sandbox.sh); programs attached by bpftool,
	# then by `balancer attach`; compiled images loaded with `balancer load` and rolled back. Needs root.
	@if [ "$$(id -u)" = 0 ]; then BALANCER=$(CURDIR)/$(BALANCER) bash e2e/run.sh; \
	else $(call skip_kernel,e2e/run.sh,attaching BPF programs needs root); fi
	# Differential: for every golden fixture and every probe of its expect.txt, the kernel reaches
	# exactly the backends the Resolver names, or fails as it says (same sandbox). Needs root.
	@if [ "$$(id -u)" = 0 ]; then BALANCER=$(CURDIR)/$(BALANCER) bash e2e/differential.sh; \
	else $(call skip_kernel,e2e/differential.sh,attaching BPF programs needs root); fi
	# LocalRedirectPolicy and BalancingPolicy behaviour that depends on the host, on time or on a
	# sequence of images: node, pods vanishing, skipRedirectFromBackend, rate limit, redirect modes
	# and host mode nodeport, rule priority, node selection (same sandbox). Needs root.
	@if [ "$$(id -u)" = 0 ]; then BALANCER=$(CURDIR)/$(BALANCER) bash e2e/policies.sh; \
	else $(call skip_kernel,e2e/policies.sh,attaching BPF programs needs root); fi
	# Incremental loads: `watch --dir` writes only the records that differ into the standby
	# generation; after every change (endpoints, Services, a broken file, a change beyond the maps'
	# headroom, a rollback) `check-live` finds the live tables equal to `compile` of the same tree
	# (same sandbox). Needs root.
	@if [ "$$(id -u)" = 0 ]; then BALANCER=$(CURDIR)/$(BALANCER) bash e2e/incremental.sh; \
	else $(call skip_kernel,e2e/incremental.sh,attaching BPF programs needs root); fi
	# A forged image (control characters, escape sequences and NUL in its names) loaded: status and
	# check-live print one record per line; a corrupt image is named by load, check-live and status
	# (same sandbox). Needs root.
	@if [ "$$(id -u)" = 0 ]; then BALANCER=$(CURDIR)/$(BALANCER) bash e2e/hostile-image.sh; \
	else $(call skip_kernel,e2e/hostile-image.sh,attaching BPF programs needs root); fi
	$(SWIFT) test --skip-build
	$(kernel_skips)

# Runs each fuzzer (fuzz/README.md) for FUZZ_SECONDS and prints executions and findings.
fuzz: deps
	bash fuzz/build.sh
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

# Rewrites golden/<case>.image and golden/<case>.txt from fixtures/<case>/, and the expected refusals
# fixtures/hostile/*.expected. Review the diff.
# Cases whose compile reports policy errors are rendered as --keep-going writes them (the Swift
# fixture test compares the same, and checks the errors against the case's `! error` lines).
golden: build
	@mkdir -p golden
	@for d in fixtures/*/; do \
		n=$$(basename $$d); [ $$n = hostile ] && continue; \
		in=$$(sed -n 's/^! clusters //p' $$d/expect.txt 2>/dev/null | tr ' ' '\n' | sed "s|.*|--cluster &=$$d&|"); \
		$(BALANCER) compile $${in:-$$d} -o golden/$$n.image --keep-going >/dev/null 2>&1 || exit 1; \
		$(BALANCER) inspect golden/$$n.image > golden/$$n.txt || exit 1; \
		echo "golden/$$n"; \
	done
	@# The expected refusals of fixtures/hostile (the inputs every boundary must refuse).
	@BALANCER_REGENERATE_GOLDEN=1 $(SWIFT) test --filter HostileInputTests >/dev/null && echo "fixtures/hostile/*.expected"
	@# The image fuzzer's seeds: their mode byte, then the golden image of their name (an image of
	@# an older ABI would stop at the header and leave the tables unfuzzed).
	@for f in fuzz/corpus/image/*.image; do \
		n=$$(basename $$f .image); n=$${n#mode0-}; [ -e golden/$$n.image ] || continue; \
		{ head -c 1 $$f; cat golden/$$n.image; } > $$f.tmp && mv $$f.tmp $$f; \
	done; echo "fuzz/corpus/image/*.image"

demo: build
	@bash docs/demo.sh $(BALANCER)
	@if [ "$$(id -u)" = 0 ]; then bash docs/demo-kernel.sh $(CURDIR)/$(BALANCER); \
	else echo "(the kernel part of the demo needs root: it attaches the datapath in a sandbox)"; fi

bench: deps
	@rm -f $(KERNEL_SKIPPED)
	bash bench/run.sh
	@if [ "$$(id -u)" = 0 ]; then bash bench/incremental.sh; else $(call skip_kernel,bench/incremental.sh,it needs root); fi
	@if [ "$$(id -u)" = 0 ]; then bash bench/swap.sh && bash bench/hook.sh; \
	else $(call skip_kernel,bench/swap.sh bench/hook.sh,they need root); fi
	$(kernel_skips)

# Fault figures (bench/fault.sh, bench/README.md): 1,000 `balancer load`s and 100 watchers killed
# with SIGKILL at random points under continuous connects, in the kernel sandbox, with a release
# build; ends with one summary block (also in bench/out/fault/summary.txt). Root only; about 45
# minutes on 2 cores.
fault: deps
	@if [ "$$(id -u)" != 0 ]; then echo "make fault needs root: it attaches the datapath in a sandbox"; exit 1; fi
	$(SWIFT) build -c release
	BALANCER=$(CURDIR)/$(RELEASE_BALANCER) bash bench/fault.sh

clean:
	rm -rf .build .build-fuzz bench/out
