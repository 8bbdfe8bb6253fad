# pam_pykeyinit: see README.md. Every target that needs something installs it.
SHELL := /bin/bash
PYTHON := /usr/bin/python3
VENV := .venv
APT_PACKAGES := libpam-python pamtester keyutils libpam-modules libpam0g-dev gcc \
	python3-venv linux-libc-dev util-linux passwd strace \
	linux-libc-dev-arm64-cross linux-libc-dev-armhf-cross linux-libc-dev-i386-cross \
	linux-libc-dev-riscv64-cross linux-libc-dev-ppc64el-cross linux-libc-dev-s390x-cross
DEMO_PACKAGES := libpam-python pamtester keyutils libpam-modules passwd util-linux
DEB_PACKAGES := build-essential debhelper dh-python pybuild-plugin-pyproject python3-all python3-setuptools \
	python3-docutils lintian
# elfutils: eu-strip, which find-debuginfo (debugedit) runs when rpmbuild
# makes a debuginfo package, as trixie's rpm 4.20 does by default
RPM_PACKAGES := rpm rpm2cpio cpio elfutils python3-pip python3-setuptools python3-wheel python3-docutils
# what packaging/pam-python/build.sh needs (it installs them itself too)
PAM_PYTHON_PACKAGES := build-essential dpkg-dev debhelper libpam0g-dev python3-dev python3-setuptools
VM_PACKAGES := debootstrap qemu-system-x86 cpio
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' pam_pykeyinit/__init__.py)
# The source tree as packaging sees it: tracked and new files, no build output.
SOURCE_FILES = $$(git ls-files --cached --others --exclude-standard)

.PHONY: all check check-suite old-deb deps apt-deps venv lint test foreign-python bytecode demo mutate \
	bench bench-suite deb rpm \
	pam-python-deb pam-python-debs pam-python-rpm vm-test autopkgtest clean

all: check

# apt-get only runs when a package is missing, so a second `make check` is quick.
define apt_install
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
		| grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "apt: installing $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
endef

apt-deps:
	$(call apt_install,$(APT_PACKAGES))

$(VENV)/.installed: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

deps: apt-deps venv

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: deps pam-python-deb foreign-python
	$(VENV)/bin/python -m pytest -m "not vm"

# A CPython of another minor version than pam_python's, built once from the
# other suite's source in the archive (tools/foreign-python.sh; cached in
# /var/cache/pam-pykeyinit-python) for tests/pam/test_python_clients.py.
foreign-python: apt-deps
	version=$$($(PYTHON) -c 'from pam_pykeyinit import host; \
		so = host.pam_python(); print(host.embedded_python(so).name[len("python"):])') && \
	bash tools/foreign-python.sh $$version

check: deps lint test

# A mutation audit (tools/mutate.py): a handful of hand-made bugs, each in a
# copy of the checkout, each run against the tests that should catch it;
# fails when one survives. MUTATE_ARGS: e.g. --commit HEAD, or mutation names.
mutate: deps
	$(VENV)/bin/python tools/mutate.py $(MUTATE_ARGS)

# The whole suite (CI=true make check) inside a root of the other supported
# suite: trixie on a bookworm host, bookworm on a trixie one (tools/suite-root.sh;
# the root, with every package the targets install, is cached); then that
# suite's lintian on the .deb built here (one package for both suites).
HOST_SUITE := $(shell . /etc/os-release && echo $$VERSION_CODENAME)
SUITE ?= $(if $(filter trixie,$(HOST_SUITE)),bookworm,trixie)
SUITE_PACKAGES = $(APT_PACKAGES) $(DEB_PACKAGES) $(RPM_PACKAGES) $(PAM_PYTHON_PACKAGES)
check-suite: deb
	$(call apt_install,debootstrap)
	bash tools/suite-root.sh $(SUITE) "$(SUITE_PACKAGES)" -- sh -c 'make check && \
		lintian --fail-on error,warning --info /pykt/dist/libpam-pykeyinit_$(VERSION)_all.deb'

# dist/libpam-python_<Debian's version>+pykeyinitN_<arch>.deb: Debian's
# pam-python for the host's suite, with Debian's patches and ours (the GIL,
# the Python version, libpython kept loaded), built from the archive's source
# by packaging/pam-python/build.sh (doc/pam-python.md). Rebuilt
# when a file of packaging/pam-python changes.
PAM_PYTHON_CHANGELOG := packaging/pam-python/suites/$(HOST_SUITE)/changelog
PAM_PYTHON_DEB := dist/libpam-python_$(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' \
	$(PAM_PYTHON_CHANGELOG))_$(shell dpkg --print-architecture).deb
pam-python-deb: $(PAM_PYTHON_DEB)

$(PAM_PYTHON_DEB): $(shell find packaging/pam-python -type f)
	$(call apt_install,lintian $(PAM_PYTHON_PACKAGES))
	WORK=$(CURDIR)/build/pam-python bash packaging/pam-python/build.sh dist
	lintian --fail-on error,warning --info $@

# dist/pam_python-<version>-1.pykeyinitN.<arch>.rpm: the same source and
# patches as pam-python-deb, from packaging/rpm/pam_python.spec, with
# Debian's rpmbuild (doc/pam-python.md says what it shows).
pam-python-rpm: pam-python-deb
	$(call apt_install,$(RPM_PACKAGES))
	rm -rf build/rpm-pam-python && mkdir -p build/rpm-pam-python/SOURCES dist
	cp build/pam-python/pam-python_*.orig.tar.xz packaging/pam-python/patches/*.patch \
		build/rpm-pam-python/SOURCES/
	PATH=/usr/sbin:/usr/bin:/sbin:/bin rpmbuild -bb --nodeps \
		--define "_topdir $(CURDIR)/build/rpm-pam-python" packaging/rpm/pam_python.spec \
		>build/rpm-pam-python/build.log 2>&1 || { tail -30 build/rpm-pam-python/build.log; exit 1; }
	# the package itself, not the -debuginfo and -debugsource ones that rpmbuild
	# makes where it has find-debuginfo (trixie)
	cp build/rpm-pam-python/RPMS/*/pam_python-[0-9]*.rpm dist/

# Byte-compile the checkout's package with the interpreter pam_python embeds,
# as py3compile does for the installed package: pam_python writes no
# bytecode, so without this every login compiles every module (make bench
# shows the cost). umask 022: the loader refuses a writable __pycache__.
bytecode:
	$(call apt_install,libpam-python)
	umask 022 && interpreter=$$($(PYTHON) -c 'from pam_pykeyinit import host; \
		so = host.pam_python(); print((so and host.embedded_python(so)) or "$(PYTHON)")') && \
		$$interpreter -m compileall -q pam_pykeyinit

demo: bytecode
	$(call apt_install,$(DEMO_PACKAGES))
	bash tools/demo.sh

bench: deps pam-python-deb
	$(call apt_install,valgrind)
	$(PYTHON) tools/bench.py --pam-python-deb $(PAM_PYTHON_DEB)

# make bench's measurement inside a fresh root of the other suite with only
# what it needs (a Debian 13 host as installed, when run on Debian 12: no
# build tools, whose .pth files run in every interpreter's start), on that
# suite's libpam-python built by pam-python-debs
BENCH_PACKAGES := libpam-python pamtester keyutils libpam-modules passwd valgrind python3
bench-suite: pam-python-debs
	$(call apt_install,debootstrap)
	deb=libpam-python_$$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' \
		packaging/pam-python/suites/$(SUITE)/changelog)_$$(dpkg --print-architecture).deb && \
	bash tools/suite-root.sh $(SUITE) "$(BENCH_PACKAGES)" -- \
		/usr/bin/python3 tools/bench.py --pam-python-deb /pykt/dist/$$deb

# dist/libpam-pykeyinit_VERSION_all.deb, from packaging/debian/ copied into
# a copy of the source tree under build/ (the top level stays as it is), and
# the libpam-python it depends on (pam-python-deb, this host's suite): both
# are linked into dist/install/, for `apt install ./dist/install/*.deb`.
deb: pam-python-deb
	$(call apt_install,$(DEB_PACKAGES))
	rm -rf build/deb && mkdir -p build/deb/src dist
	tar -cf - $(SOURCE_FILES) | tar -xf - -C build/deb/src
	cp -r packaging/debian build/deb/src/debian
	# Debian tools with Debian's python3, whatever else is first on PATH
	cd build/deb/src && PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b --no-sign
	cp build/deb/libpam-pykeyinit_$(VERSION)_all.deb dist/
	lintian --fail-on error,warning --info dist/libpam-pykeyinit_$(VERSION)_all.deb
	rm -rf dist/install && mkdir dist/install
	ln dist/libpam-pykeyinit_$(VERSION)_all.deb $(PAM_PYTHON_DEB) dist/install/
	@echo "deb: install both with: apt install ./dist/install/*.deb"

# dist/pam_pykeyinit-VERSION-1.noarch.rpm with Debian's rpmbuild and the
# stand-in macros of packaging/rpm/macros.debian (see doc/install.md).
rpm:
	$(call apt_install,$(RPM_PACKAGES))
	rm -rf build/rpm && mkdir -p build/rpm/SOURCES dist
	tar -czf build/rpm/SOURCES/pam_pykeyinit-$(VERSION).tar.gz \
		--transform 's,^,pam_pykeyinit-$(VERSION)/,' $(SOURCE_FILES)
	PATH=/usr/sbin:/usr/bin:/sbin:/bin packaging/rpm/rpmbuild-debian.sh \
		$(CURDIR)/build/rpm packaging/rpm/pam_pykeyinit.spec
	cp build/rpm/RPMS/noarch/pam_pykeyinit-$(VERSION)-1.noarch.rpm dist/

# The earlier releases' packages, built from their commits, for the upgrade
# test: 0.1.0, and 0.2.0 as it last landed (1b5e3bc; the version stayed 0.2.0
# from 24ea07f on), which depends on plain libpam-python.
OLD_RELEASES := 0.1.0:7ed47dc7e34d8d7cede1273dde62d84c4b078d50 \
	0.2.0:1b5e3bc3d0540c436ba4c068bdf5a3dd38700086
old-deb:
	$(call apt_install,$(DEB_PACKAGES))
	for release in $(OLD_RELEASES); do \
		version=$${release%%:*}; commit=$${release#*:}; \
		git cat-file -e $$commit^{commit} 2>/dev/null || { echo "the $$version commit \
			$$commit is not in this clone (a shallow clone?): the upgrade test needs it"; exit 1; }; \
		rm -rf build/deb-old && mkdir -p build/deb-old/src dist && \
		git archive $$commit | tar -xf - -C build/deb-old/src && \
		cp -r build/deb-old/src/packaging/debian build/deb-old/src/debian && \
		(cd build/deb-old/src && PATH=/usr/sbin:/usr/bin:/sbin:/bin \
			dpkg-buildpackage -us -uc -b --no-sign >../build.log 2>&1) && \
		cp build/deb-old/libpam-pykeyinit_$${version}_all.deb dist/ || exit 1; \
	done

# Guests of Debian 12 and Debian 13 (SUITES="bookworm trixie"), two kinds:
# - initramfs guests (tools/vm), each with its suite's kernel and our own
#   init, for what autopkgtest cannot do: the fresh .deb refused beside
#   Debian's libpam-python, the 0.1.0 and 0.2.0 packages upgraded by the
#   README's command (our libpam-python and the fresh .deb), C and Python
#   clients (Debian's pam_python.so by path, for its crash), faults;
# - Debian's autopkgtest in guests booted by systemd (tools/autopkgtest):
#   ssh, the user manager, cron, tmux, su and runuser with Debian's stacks
#   and converted ones, and the package's pam-auth-update profile and removal.
# The reports are asserted by tests/vm; any failure fails the target.
SUITES ?= bookworm trixie
vm-test: deb old-deb venv pam-python-debs
	$(call apt_install,$(VM_PACKAGES))
	SUITES="$(SUITES)" bash tools/vm/run.sh dist/libpam-pykeyinit_$(VERSION)_all.deb \
		dist/libpam-pykeyinit_0.1.0_all.deb dist/libpam-pykeyinit_0.2.0_all.deb
	$(MAKE) autopkgtest
	SUITES="$(SUITES)" $(VENV)/bin/python -m pytest -m vm tests/vm

# The GIL-safe libpam-python of every suite in SUITES: the host's, and the
# others' built in their roots (tools/suite-root.sh).
pam-python-debs: pam-python-deb
	mkdir -p build && for suite in $(filter-out $(HOST_SUITE),$(SUITES)); do \
		PYKT_COLLECT='libpam-python_*+pykeyinit*.deb' bash tools/suite-root.sh $$suite \
			"$(SUITE_PACKAGES)" -- make pam-python-deb >build/pam-python-$$suite.log 2>&1 \
			|| { tail -30 build/pam-python-$$suite.log; exit 1; }; \
	done

# Debian's autopkgtest (packaging/debian/tests) against the .deb, in a qemu
# guest of each suite booted by systemd (tools/autopkgtest; images cached in
# /var/cache/pam-pykeyinit-autopkgtest, the tests' packages baked in, so no
# apt upgrade), with the suite's libpam-python of packaging/pam-python, which
# the package depends on, given to autopkgtest as a package under test too.
# Results in /var/cache/pam-pykeyinit-autopkgtest/results.
# autopkgtest exits 2 when a test was skipped (jupyterhub-session on Debian
# 12, which has no jupyterhub): accepted here, since tests/vm/test_autopkgtest.py
# asserts each test's verdict per suite; any other status fails.
autopkgtest: deb pam-python-debs
	for suite in $(SUITES); do \
		ours=$$(sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' packaging/pam-python/suites/$$suite/changelog); \
		rc=0; PYKT_APT_UPGRADE=0 bash tools/autopkgtest/run-autopkgtest.sh $$suite \
			dist/libpam-pykeyinit_$(VERSION)_all.deb \
			dist/libpam-python_$${ours}_$$(dpkg --print-architecture).deb || rc=$$?; \
		[ $$rc -eq 0 ] || [ $$rc -eq 2 ] || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build dist
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
