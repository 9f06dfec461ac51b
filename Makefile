# The two commands: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local
SKIFF := $(CURDIR)/target/release/skiff
SLIPWAY := $(CURDIR)/target/release/slipway
# The runtime the integration suite drives; `make test OCI_RUNTIME=runc` points it at runc.
OCI_RUNTIME ?= $(SKIFF)
export OCI_RUNTIME

# Debian packages the build, the tests and the benchmarks need. A fresh machine has none of them.
DEB_PKGS := libseccomp-dev pkg-config busybox-static runc hyperfine time jq iproute2 util-linux e2fsprogs xz-utils bzip2 libcap2-bin containerd podman docker.io buildah docker-registry skopeo apache2-utils openssl systemd uidmap passwd openssh-client gcc libc6-dev git slirp4netns python3-venv python3-pip npm

# The S3 server of the s3 cache tests: moto (Debian has no S3 server), pinned, in a venv outside
# the repository. Reinstalled only when the version changes; the tests skip without it.
MOTO_VERSION := 5.2.6
MOTO_VENV := /var/cache/slipway-test/moto-venv
# The Azure Blob server of the azblob cache tests: Microsoft's emulator Azurite, only on npm,
# pinned (3.35.0 asks node >= 10; 3.37 asks >= 22 and Debian has 18), outside the repository, as moto.
AZURITE_VERSION := 3.35.0
AZURITE_DIR := /var/cache/slipway-test/azurite

.PHONY: deps build failpoints test lint unit integration demo bench install install-files clean cgroup2-deps test-cgroup2 systemd-deps test-systemd bench-cgroup2 fuzz test-crash-long bench-reliability

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || \
	  { [ $$p = npm ] && command -v npm >/dev/null; } || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "deps: all present"; fi
	@if [ -f $(MOTO_VENV)/.moto-$(MOTO_VERSION) ]; then echo "deps: moto $(MOTO_VERSION) present"; \
	else \
	  echo "deps: installing moto[server]==$(MOTO_VERSION) into $(MOTO_VENV)"; \
	  rm -rf $(MOTO_VENV) && /usr/bin/python3 -m venv $(MOTO_VENV) && \
	  $(MOTO_VENV)/bin/pip install -q --disable-pip-version-check 'moto[server]==$(MOTO_VERSION)' && \
	  touch $(MOTO_VENV)/.moto-$(MOTO_VERSION) || \
	  echo "deps: WARNING: moto not installed (PyPI unreachable?): the s3 cache tests will skip"; \
	fi
	@if [ -f $(AZURITE_DIR)/.azurite-$(AZURITE_VERSION) ]; then echo "deps: azurite $(AZURITE_VERSION) present"; \
	else \
	  echo "deps: installing azurite@$(AZURITE_VERSION) into $(AZURITE_DIR)"; \
	  rm -rf $(AZURITE_DIR) && mkdir -p $(AZURITE_DIR) && \
	  npm install -q --prefix $(AZURITE_DIR) --no-audit --no-fund --omit=dev 'azurite@$(AZURITE_VERSION)' && \
	  touch $(AZURITE_DIR)/.azurite-$(AZURITE_VERSION) || \
	  echo "deps: WARNING: azurite not installed (npm registry unreachable?): the azblob cache tests will skip"; \
	fi

# skiff is linked as a static PIE (glibc's libc.a, libseccomp.a; still position-independent, so
# ASLR stays): no dynamic loader at each of its starts (create and run start it twice, start and
# delete once) and no libc.so, ld.so, libgcc_s mappings. At load 3: --version 0.63 against 0.94
# ms of CPU, run 15.7 against 19.8 ms, peak RSS 5.0 against 5.7 MiB. crt-static cannot go in
# RUSTFLAGS (it breaks proc-macro crates), so only the binary's own crate gets it, through
# `cargo rustc`; a plain `cargo build` still gives a dynamically linked skiff.
build: deps
	$(CARGO) build --release --workspace --bins --exclude skiff
	$(CARGO) rustc --release -p skiff --bin skiff -- -C target-feature=+crt-static

# skiff and slipway with crash points (runtime/src/failpoint.rs, builder/src/failpoint.rs) at
# target/failpoints/, for the crash tests.
failpoints: deps
	$(CARGO) build --profile failpoints -p skiff -p slipway --features skiff/failpoints,slipway/failpoints

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# Test binaries build in the dev profile (no LTO: linking ~20 test binaries with thin LTO costs
# minutes); the integration tests drive the release binaries `build` made.
# A test that cannot check what it names on this host says why through integration::skip; the
# list of those skips, with their reasons, is printed at the end, pass or fail.
test: build failpoints lint
	@rm -f target/test-skips.log
	@status=0; $(CARGO) test --workspace --no-fail-fast || status=$$?; \
	  bash scripts/test-skips.sh target/test-skips.log; exit $$status

# `make test-cgroup2` boots a qemu VM (TCG) with cgroup2 alone and runs the cgroup integration
# tests in it (scripts/test-cgroup2.sh). It takes minutes, so it stays outside `make test`.
# qemu-system-x86 comes from bookworm-backports where the installed qemu-utils does.
CGROUP2_PKGS := qemu-system-x86 cpio zstd

cgroup2-deps: deps
	@missing=""; for p in $(CGROUP2_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "cgroup2-deps: installing$$missing"; \
	  apt-get update -q && { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing || \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -t bookworm-backports $$missing; }; \
	else echo "cgroup2-deps: all present"; fi

test-cgroup2: build cgroup2-deps
	bash scripts/test-cgroup2.sh "$(SKIFF)"

# `make test-systemd` boots a qemu VM (TCG) whose pid 1 is systemd on cgroup v2, with a Debian
# root made by mmdebstrap (cached in target/systemd-vm/), and runs integration tests there
# (scripts/test-systemd.sh; SD_TESTS, SD_FILTER, SD_ENV choose what). Slow: outside `make test`.
systemd-deps: cgroup2-deps
	@dpkg-query -W -f='$${Status}' mmdebstrap 2>/dev/null | grep -q "ok installed" || { \
	  echo "systemd-deps: installing mmdebstrap"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap; }

test-systemd: build systemd-deps
	bash scripts/test-systemd.sh "$(SKIFF)"

# `make bench-cgroup2`: make bench's runtime part (run, create+start+delete of /bin/true) in the
# systemd VM on cgroup v2 alone, skiff against Debian's runc 1.1.5 and crun 1.8.1 there (crun does
# not run on CI's hybrid host), interleaved (scripts/test-systemd.sh with SD_BENCH=1). qemu is TCG
# here: the ratios count, not the milliseconds. 11-18 minutes here; outside `make test` and `make bench`.
bench-cgroup2: build systemd-deps
	SD_BENCH=1 bash scripts/test-systemd.sh "$(SKIFF)"

demo: build
	@bash scripts/demo.sh "$(SKIFF)" "$(SLIPWAY)"

# The randomized SIGKILL-during-create test with 500 trials instead of make test's 20.
test-crash-long: build
	SKIFF_CRASH_TRIALS=500 $(CARGO) test -p integration --test crash sigkill_at_any_moment -- --nocapture

# skiff and runc under faults and load, one table (fault trials, parallel runs, leak loop).
bench-reliability: build
	@bash scripts/bench-reliability.sh "$(SKIFF)"

# Coverage-guided fuzzing, FUZZ_RUNS (default 1,000,000) inputs per target; long, not in CI
# (make test runs the fuzz crate's smoke instead).
fuzz: deps
	@bash scripts/fuzz.sh

bench: build
	@bash scripts/bench.sh "$(SKIFF)" "$(SLIPWAY)"

# The binaries, their man pages (skiff(1), skiff-run(1), slipway-build(1), ...) and bash, zsh and
# fish completions, generated from the clap definitions by docgen (which `build` builds).
install: build install-files

install-files:
	rm -rf target/docs && $(CURDIR)/target/release/docgen target/docs
	install -D -m 0755 $(SKIFF) $(DESTDIR)$(PREFIX)/bin/skiff
	install -D -m 0755 $(SLIPWAY) $(DESTDIR)$(PREFIX)/bin/slipway
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 target/docs/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	for b in skiff slipway; do \
	  install -D -m 0644 target/docs/completions/$$b.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$b && \
	  install -D -m 0644 target/docs/completions/_$$b $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$b && \
	  install -D -m 0644 target/docs/completions/$$b.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$b.fish || exit 1; \
	done

clean:
	$(CARGO) clean
